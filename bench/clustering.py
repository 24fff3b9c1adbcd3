"""Which clustering wins in the full pipeline: agglomerative, VBx with a PLDA of our own encoder, HDBSCAN, bisecting
k-means; the demo's best models, each pipeline tuned on dev and scored on test, on the demo corpus and on the
held-out corpus (voices no training run heard, 5-20 dB SNR; ``bench/heldout.py``).

    python -m bench.clustering         (after `make demo`; DEMO_DIR=... for another demo folder)

The PLDA is fitted once (``dist-spk train plda``) on the demo's speaker corpus, the encoder's own training voices: the
held-out corpus is never fitted on, as a user's new recordings would not be.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.common import ROOT, WORK, record
from bench.heldout import heldout_corpus

CLUSTERINGS = ("agglomerative", "vbx", "hdbscan", "bisecting_kmeans")
ITERATIONS = 50  # as the demo tunes its pipeline


def main() -> None:
    import shutil

    from dist_spk.pipeline.evaluate import evaluate_pipeline
    from dist_spk.pipeline.plda import fit_encoder_plda

    demo = Path(os.environ.get("DEMO_DIR", ROOT.parent / "demo"))
    segmentation, embedding = demo / "tune-seg" / "best", demo / "tune-spk" / "best"
    if not (segmentation / "checkpoint.ckpt").is_file() or not (embedding / "checkpoint.ckpt").is_file():
        raise SystemExit(f"{demo}: no best models; run `make demo` first (or set DEMO_DIR)")
    plda = WORK / "clustering-plda"
    shutil.rmtree(plda, ignore_errors=True)
    about = fit_encoder_plda(embedding, demo / "corpus" / "spk", plda)
    figures: dict = {"demo_dir": str(demo), "plda": about, "iterations": ITERATIONS}
    for name, corpus in (("demo", demo / "corpus"), ("heldout", heldout_corpus())):
        ders = {}
        for clustering in CLUSTERINGS:
            report = evaluate_pipeline(segmentation, embedding, corpus / "diar", split="test", tune_on="dev",
                                       iterations=ITERATIONS, clustering=clustering,
                                       plda=plda if clustering == "vbx" else None)
            tuned = report["tuned"]["overall"]["collar_0"]
            ders[clustering] = round(tuned["der"], 4)
            figures[f"{name}_{clustering}"] = {k: round(tuned[k], 4) for k in ("der", "confusion", "false_alarm",
                                                                                "miss")}
            figures[f"{name}_{clustering}"]["params"] = report["tuned"]["params"]
        figures[f"{name}_baseline_one_speaker_oracle_speech"] = round(
            report["baselines"]["one_speaker_oracle_speech"]["collar_0"]["der"], 4)
        winner = min(ders, key=ders.get)
        figures[f"{name}_winner"] = winner
        figures[f"{name}_der_by_clustering"] = ders
        figures[f"{name}_vbx_minus_agglomerative"] = round(ders["vbx"] - ders["agglomerative"], 4)
    record("clustering", figures, command="python -m bench.clustering  (after make demo)")


if __name__ == "__main__":
    main()
