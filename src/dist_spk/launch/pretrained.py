"""A segmentation model to fine-tune from when the hub is out of reach: PyanNet pretrained once on synthetic speech.

The seed teams fine-tune ``pyannote/segmentation-3.0``, and so do the cluster presets. A machine without the hub
(the demo, the local test mode offline) needs a starting point of its own: PyanNet trained with pyannote's
recipe (powerset cross-entropy, Adam at 1e-3, batch 32) on a synthetic corpus of its own (``data synth`` with
seed 1000: other recordings than the demo's, and none of the held-out benchmark's voices), once per machine,
cached like a hub download under ``$DIST_SPK_CACHE`` (default ``~/.cache/dist_spk``). Searches then fine-tune
it (``model.init=<the checkpoint>``): every trial starts from a model that already tells speakers apart, as
fine-tuning does on a cluster, instead of spending a local run's few hundred optimizer steps learning that.

Measured on the demo corpus (2 CPU cores, `make demo`): from random weights, five of six local trials ended at
one speaker on every frame (DER 0.305 on the dev chunks, the `OneSpeakerWholeChunk` baseline) or above; fine-tuned
from this model, all six ended at 0.132-0.143, and each one's model scored test DER 0.093-0.122 in the pipeline.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

NAME = "pyannet-synthetic-v1"  # bump when the recipe or the corpus changes: a new cache entry
SEED = 1000
RECIPE = ("loss.name=powerset_ce", "optim.name=adam", "optim.lr=0.001", "optim.lookahead=false",
          "lr_schedule.name=none", "data.batch_size=32", "augment.probability=0.0", "trainer.epochs=4",
          "trainer.workers=0")  # in this process: no Ray start-up for a single run


def cache_root() -> Path:
    return Path(os.environ.get("DIST_SPK_CACHE") or Path.home() / ".cache" / "dist_spk")


def pretrained_segmentation(*, cache: Path | None = None, log=print, size: str = "small",
                            overrides: tuple[str, ...] = ()) -> Path:
    """The cached checkpoint, trained first if this machine has none (about a minute and a half on 2 cores).

    ``size`` and ``overrides`` (after the recipe) shorten it for tests, in a cache of their own."""
    from dist_spk.config import load_config
    from dist_spk.data.synth import synthesize
    from dist_spk.launch.run import run_training
    from dist_spk.runs.run_dir import best_checkpoint

    folder = (cache or cache_root()) / NAME
    checkpoint = folder / "checkpoint.ckpt"
    if checkpoint.is_file():
        return checkpoint
    staging = folder.with_name(f".{NAME}.partial")  # what an interrupted pretraining left is started over
    shutil.rmtree(staging, ignore_errors=True)
    log(f"[pretrain] no local segmentation model yet: training {NAME} once on a synthetic corpus of its own "
        f"(seed {SEED}), cached in {folder}")
    synthesize(staging / "corpus", seed=SEED, size=size)
    recipe = [*RECIPE, *overrides]
    config = load_config("seg", overrides=[f"data.root={(staging / 'corpus' / 'diar').resolve()}", *recipe])
    summary = run_training("seg", config, out=staging / "run")
    shutil.copyfile(best_checkpoint(staging / "run"), staging / "checkpoint.ckpt")
    (staging / "pretrained.json").write_text(json.dumps({"name": NAME, "seed": SEED, "recipe": recipe,
                                                         "best": summary["best"]}, indent=1) + "\n")
    shutil.rmtree(staging / "corpus")  # its audio is not needed again: the corpus is re-made from its seed
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)
    best = summary["best"] or {}
    der = best.get("DiarizationErrorRate", float("nan"))
    oracle = best.get("DiarizationErrorRate/OneSpeakerOracleSpeech", float("nan"))
    log(f"[pretrain] {checkpoint}: DER {der:.3f} on its own dev chunks (one speaker on the oracle speech: "
        f"{oracle:.3f})")
    return checkpoint
