"""Model quality on voices no training run heard: the demo's best models on a held-out corpus, beside trivial baselines.

    python -m bench.heldout            (scores what `make demo` trained in demo/; DEMO_DIR=... for another)

The held-out corpus is ``dist-spk data synth --style heldout --seed 1``: voices no demo corpus holds
(other languages' espeak voices reading English, and near-twins of demo voices), 5-20 dB SNR. Nothing
trains on it: the speaker encoder is scored on its trial list, the pipeline on its test split (tuned on
its dev split, the pipeline's own hyper-parameters only), and pyannote's real 30 s sample is scored too.

Baselines beside every figure: for speakers, cosine scoring of each utterance's mean and standard deviation
of 40 log-mel energies (no learning); for diarization, one speaker over the whole file and one speaker over
the oracle speech.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np

from bench.common import CLI, ROOT, WORK, record


def heldout_corpus(seed: int = 1) -> Path:
    import hashlib

    from dist_spk.data.synth import SIZES, STYLES

    # a corpus made by another version of the size or style is made again, not reused
    spec = hashlib.sha256(repr((SIZES["small"], STYLES["heldout"])).encode()).hexdigest()[:8]
    out = WORK / f"heldout-small-seed{seed}-{spec}"
    if not (out / "corpus.json").is_file():
        subprocess.run([*CLI, "data", "synth", str(out), "--size", "small", "--style", "heldout", "--seed", str(seed)],
                       check=True)
    return out


def log_mel_statistics_eer(data: Path) -> float:
    """EER of the no-learning baseline: cosine between per-utterance (mean, std) of 40 log-mel energies."""
    import soundfile
    import torch
    import torchaudio

    from dist_spk.data.speakers import load_speakers
    from dist_spk.data.trials import parse_trials
    from dist_spk.speaker.module import verification_metrics

    manifest = load_speakers(data)
    trials, _ = parse_trials(data / "trials.txt")
    keys = manifest.by_key()
    needed = [keys[key] for key in sorted({t.enroll for t in trials} | {t.test for t in trials})]
    stats = []
    for utterance in needed:
        audio, rate = soundfile.read(utterance.path, dtype="float32")  # the corpus: whole 16 kHz files
        waveform = torch.from_numpy(audio).unsqueeze(0)
        fbank = torchaudio.compliance.kaldi.fbank(waveform * 32768, num_mel_bins=40, sample_frequency=rate)
        stats.append(torch.cat([fbank.mean(0), fbank.std(0)]).numpy())
    features = np.stack(stats)
    features = (features - features.mean(0)) / (features.std(0) + 1e-8)  # standardised over the trial utterances
    return float(verification_metrics(features, needed, trials)["eer"])  # the encoder's own cosine scoring


def demo_trials_in_pipeline(demo: Path) -> dict[str, float]:
    """Test DER of every demo segmentation trial's model in the pipeline (the demo's best speaker encoder, the
    pipeline parameters the demo tuned on dev): does every trial, not only the best, beat the trivial baselines?"""
    import json

    from dist_spk.pipeline.diarization import build_pipeline, free_params
    from dist_spk.pipeline.evaluate import der_report, pipeline_files, with_waveform

    params = free_params(json.loads((demo / "pipeline" / "report.json").read_text())["tuned"]["params"])
    files = [with_waveform(f) for f in pipeline_files(demo / "corpus" / "diar", "test")]
    ders = {}
    for trial in sorted((demo / "tune-seg" / "trials").iterdir()):
        pipeline = build_pipeline(trial, demo / "tune-spk" / "best")
        pipeline.instantiate(params)
        ders[trial.name] = round(der_report([(f, pipeline(f)) for f in files])["overall"]["collar_0"]["der"], 4)
    return ders


def _der(report: dict, name: str) -> float:
    overall = report["baselines"][name] if name in report["baselines"] else report[name]["overall"]
    return round(overall["collar_0"]["der"], 4)


def main() -> None:
    from dist_spk.pipeline.evaluate import SAMPLE, evaluate_pipeline
    from dist_spk.speaker.inference import evaluate_speaker

    demo = Path(os.environ.get("DEMO_DIR", ROOT.parent / "demo"))
    segmentation, embedding = demo / "tune-seg" / "best", demo / "tune-spk" / "best"
    if not (segmentation / "checkpoint.ckpt").is_file() or not (embedding / "checkpoint.ckpt").is_file():
        raise SystemExit(f"{demo}: no best models; run `make demo` first (or set DEMO_DIR)")
    corpus = heldout_corpus()
    speaker = evaluate_speaker(embedding / "checkpoint.ckpt", corpus / "spk", corpus / "spk" / "trials.txt")
    pipeline = evaluate_pipeline(segmentation, embedding, corpus / "diar", split="test", tune_on="dev",
                                 iterations=50)
    sample = evaluate_pipeline(segmentation, embedding, SAMPLE, split="test")
    figures = {
        "demo_dir": str(demo),
        "heldout_corpus": str(corpus),
        "spk_eer_unseen_voices": round(speaker["eer"], 4), "goal_eer": "<= 0.10 (bar 0.15)",
        "spk_min_dcf_unseen_voices": round(speaker["min_dcf"], 4),
        "spk_eer_baseline_log_mel_statistics": round(log_mel_statistics_eer(corpus / "spk"), 4),
        "spk_trials": int(speaker["trials"]),
        "pipeline_der_heldout_test_default": _der(pipeline, "default"),
        "pipeline_der_heldout_test_tuned_on_dev": _der(pipeline, "tuned"), "goal_der": "<= 0.20",
        "pipeline_der_heldout_baseline_one_speaker_oracle_speech": _der(pipeline, "one_speaker_oracle_speech"),
        "pipeline_der_heldout_baseline_one_speaker_whole_file": _der(pipeline, "one_speaker_whole_file"),
        "pipeline_tuned_params": pipeline["tuned"]["params"],
        "sample_der_default": _der(sample, "default"),
        "sample_der_baseline_one_speaker_oracle_speech": _der(sample, "one_speaker_oracle_speech"),
    }
    demo_report = demo / "pipeline" / "report.json"
    if demo_report.is_file():  # what `make demo` printed on its own test split, for the same models
        import json

        report = json.loads(demo_report.read_text())
        if "baselines" in report:
            figures |= {"pipeline_der_demo_test_final": _der(report, report["final"]), "goal_demo_der": "<= 0.25",
                        "pipeline_der_demo_baseline_one_speaker_oracle_speech": _der(report,
                                                                                      "one_speaker_oracle_speech"),
                        "pipeline_der_demo_test_every_seg_trial": demo_trials_in_pipeline(demo)}
    record("heldout", figures, command="python -m bench.heldout  (after make demo)")


if __name__ == "__main__":
    main()
