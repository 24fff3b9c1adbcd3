"""Shared fixtures: hand-made datasets (fast) and the synthetic corpus (generated once per session)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

RATE = 16000


CLI = [sys.executable, "-c", "from dist_spk.cli import main; main()"]


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``dist-spk ARGS`` in a fresh process, as a user would run it (output captured, never raises)."""
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def write_tone(path: Path, seconds: float, *, seed: int = 0) -> None:
    """A noisy tone: decodable audio of an exact length."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    audio = 0.3 * np.sin(2 * np.pi * (150 + 50 * seed) * t) + 0.01 * rng.standard_normal(len(t))
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio.astype(np.float32), RATE, subtype="PCM_16")


def make_seed_dataset(root: Path, *, files: dict[str, list[str]] | None = None, seconds: float = 12.0) -> Path:
    """A small, valid seed-layout dataset: two speakers per file, one overlap, a UEM for each file."""
    files = files or {"train": ["a1", "a2", "a3"], "dev": ["b1"], "test": ["c1"]}
    for split, uris in files.items():
        (root / f"{split}.txt").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{split}.txt").write_text("".join(f"{u}\n" for u in uris))
        for index, uri in enumerate(uris):
            write_tone(root / split / "wav" / f"{uri}.wav", seconds, seed=index)
            rttm = root / split / "rttm" / f"{uri}.rttm"
            rttm.parent.mkdir(parents=True, exist_ok=True)
            rttm.write_text(
                f"SPEAKER {uri} 1 0.500 4.000 <NA> <NA> alice <NA> <NA>\n"
                f"SPEAKER {uri} 1 4.000 3.000 <NA> <NA> bob <NA> <NA>\n"
                f"SPEAKER {uri} 1 8.000 3.500 <NA> <NA> alice <NA> <NA>\n"
            )
            uem = root / split / "uem" / f"{uri}.uem"
            uem.parent.mkdir(parents=True, exist_ok=True)
            uem.write_text(f"{uri} 1 0.000 {seconds:.3f}\n")
    return root


# The local presets draw fixed-size epochs (seg: 640 chunks; spk: 640 noisy, reverberant crops) so that the demo's
# models learn in minutes. Tests keep one clean pass over their small corpus per epoch: epochs 4-6x shorter.
TEST_EPOCHS = {"seg": ("data.chunks_per_epoch=0",),
               "spk": ("data.crops_per_epoch=0", "data.noise_probability=0", "data.reverb_probability=0")}


def short_epochs(task: str) -> list[str]:
    """``TEST_EPOCHS[task]`` as ``--set`` arguments for a dist-spk command line."""
    return [arg for value in TEST_EPOCHS[task] for arg in ("--set", value)]


def local_config(task: str, root: Path, **sets: object):
    """The task's ``local`` preset on ``root``, trained in-process (``--workers 0``), with extra overrides."""
    from dist_spk.config import load_config

    overrides = [f"data.root={root}", "trainer.workers=0", *TEST_EPOCHS[task], *(f"{k}={v}" for k, v in sets.items())]
    return load_config(task, preset_name="local", overrides=overrides)


@pytest.fixture
def seed_dataset(tmp_path: Path) -> Path:
    return make_seed_dataset(tmp_path / "dataset")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """The synthetic corpus at its smallest size (a few seconds of espeak-ng)."""
    from dist_spk.data.synth import synthesize

    out = tmp_path_factory.mktemp("corpus") / "tiny"
    synthesize(out, seed=0, size="tiny")
    return out


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """A synthetic corpus of the previous demo size (``compact``: 12/3/3 conversations, 34 voices)."""
    from dist_spk.data.synth import synthesize

    out = tmp_path_factory.mktemp("corpus") / "small"
    synthesize(out, seed=0, size="compact")  # the demo's small corpus costs the suite minutes more
    return out


@pytest.fixture(scope="session")
def seg_run(small_corpus, tmp_path_factory) -> tuple[Path, dict]:
    """A segmentation run of the local preset (2 epochs, in-process) on the small corpus: (run dir, summary)."""
    from dist_spk.launch.run import run_training

    out = tmp_path_factory.mktemp("seg") / "run"
    return out, run_training("seg", local_config("seg", small_corpus / "diar", **{"trainer.epochs": 2}), out=out)


@pytest.fixture(scope="session")
def spk_run(small_corpus, tmp_path_factory) -> tuple[Path, dict]:
    """A speaker-encoder run of the local preset (20 epochs, in-process) on the small corpus: (run dir, summary)."""
    from dist_spk.launch.run import run_training

    out = tmp_path_factory.mktemp("spk") / "run"
    return out, run_training("spk", local_config("spk", small_corpus / "spk", **{"trainer.epochs": 20}), out=out)


@pytest.fixture(autouse=True)
def no_wandb_state_between_tests():
    """W&B writes into this process's environment (``WANDB_SERVICE``: its service's socket, ``WANDB_PROJECT``)
    when a test calls ``wandb.init`` or ``wandb.sweep`` in-process; a search started later as a subprocess would
    inherit them and share that service (a killed driver's runs stay open in it: "run ID ... is in use" on
    ``--resume``). Each test ends with W&B's service stopped and the environment as it found it."""
    before = {k: v for k, v in os.environ.items() if k.startswith("WANDB_")}
    yield
    if os.environ.get("WANDB_SERVICE") != before.get("WANDB_SERVICE"):
        import wandb

        wandb.teardown()
    for key in [k for k in os.environ if k.startswith("WANDB_") and k not in before]:
        del os.environ[key]
    os.environ.update(before)
