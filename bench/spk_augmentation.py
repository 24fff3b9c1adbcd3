"""Does the speaker encoder's noise and reverb help on voices no training run heard, wherever it runs?

The local preset (12 epochs of 640 crops) trained on the small demo corpus three ways, side by side in one run, each
scored on the held-out corpus's trial list (bench/heldout.py's corpus: unseen voices at 5-20 dB SNR; nothing trains
on it) and on the training corpus's own held-out speakers:

- ``none``: no augmentation (``data.noise_probability=0 data.reverb_probability=0``);
- ``device``: the preset's noise (p 0.5, random stretches of the corpus's noise recordings) and reverb (p 0.3,
  generated rooms), applied by the training step to each batch (``data.augment_on_device``, the default);
- ``loader``: the same augmentation applied by the loader (``data.augment_on_device=false``).

One seed each (training on 2 busy cores is not bit-reproducible): read differences of a few EER points as noise.

    python -m bench.spk_augmentation
"""

from __future__ import annotations

import shutil

from bench.common import WORK, corpus, metrics, record, run
from bench.heldout import heldout_corpus

EPOCHS = 12
VARIANTS = {
    "none": ["data.noise_probability=0", "data.reverb_probability=0"],
    "device": [],
    "loader": ["data.augment_on_device=false"],
}


def main() -> None:
    from dist_spk.speaker.inference import evaluate_speaker

    train, heldout = corpus("small"), heldout_corpus()
    figures = {"epochs": EPOCHS, "train_corpus": str(train), "heldout_corpus": str(heldout)}
    for name, sets in VARIANTS.items():
        out = WORK / f"spk-augmentation-{name}"
        shutil.rmtree(out, ignore_errors=True)
        overrides = [f"data.noise_dir={train / 'noise'}", *sets, f"trainer.epochs={EPOCHS}"]
        seconds = run(["train", "spk", "--data", str(train / "spk"), "--out", str(out), "--workers", "0",
                       "--preset", "local", *(arg for value in overrides for arg in ("--set", value))])
        scored = evaluate_speaker(out, heldout / "spk", heldout / "spk" / "trials.txt")
        figures[name] = {"eer_unseen_voices": round(scored["eer"], 4), "min_dcf_unseen_voices": round(
            scored["min_dcf"], 4), "eer_training_corpus_last_epoch": round(metrics(out)[-1]["eer"], 4),
            "train_seconds": round(seconds, 1)}
    figures["eer_unseen_ratio_device_vs_none"] = round(figures["device"]["eer_unseen_voices"]
                                                       / figures["none"]["eer_unseen_voices"], 3)
    record("spk_augmentation", figures, command="python -m bench.spk_augmentation")


if __name__ == "__main__":
    main()
