"""The segmentation metrics: the pipeline's decoding ranks trials; the marginal decoding is reported beside it.

Both decodings are checked against pyannote.metrics on constructed chunks, and a model whose two
decodings disagree is run through the task's own validation step: it must lose a search that a
plain model wins, although it would have won on the decoding the pipeline does not use.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pyannote.audio.utils.powerset import Powerset
from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

from dist_spk.config.tasks import SegLossConfig
from dist_spk.segmentation.task import SEG_METRICS, SEG_OBJECTIVE, SegmentationTask
from dist_spk.tune.results import trial_rows


def _annotation(activity: np.ndarray, uri: str) -> Annotation:
    """(speakers, frames) 0/1 -> Annotation with 1 s frames."""
    annotation = Annotation(uri=uri)
    for speaker, row in enumerate(activity):
        for frame in np.flatnonzero(row):
            annotation[Segment(float(frame), float(frame + 1)), f"{speaker}:{frame}"] = f"s{speaker}"
    return annotation.support()


def _reference_der(target: np.ndarray, decided: np.ndarray) -> tuple[float, float, float, float]:
    """pyannote.metrics' (DER, confusion, false alarm, miss) of 0/1 decisions, chunks of (speakers, frames)."""
    reference = DiarizationErrorRate(collar=0.0, skip_overlap=False)
    for c in range(len(target)):
        reference(_annotation(target[c], f"c{c}"), _annotation(decided[c], f"c{c}"),
                  uem=Timeline([Segment(0, target.shape[-1])]))
    total = reference["total"]
    return (abs(reference), reference["confusion"] / total, reference["false alarm"] / total,
            reference["missed detection"] / total)


def _computed(metrics: dict, preds: np.ndarray, target: np.ndarray) -> dict[str, float]:
    for metric in metrics.values():
        metric.update(torch.from_numpy(preds), torch.from_numpy(target))
    return {name: float(metric.compute()) for name, metric in metrics.items()}


def _chunks(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random 0/1 targets and soft predictions (the target blurred, speakers permuted per chunk)."""
    rng = np.random.default_rng(seed)
    chunks, speakers, frames = 4, 3, 40
    target = (rng.random((chunks, speakers, frames)) < 0.35).astype(np.float32)
    preds = np.empty_like(target)
    for c in range(chunks):
        noisy = np.clip(target[c] * 0.7 + 0.15 + rng.normal(0, 0.3, (speakers, frames)), 0, 1)
        preds[c] = noisy[rng.permutation(speakers)]
    return target, preds


def test_marginal_der_matches_pyannote_metrics_at_its_best_threshold():
    target, preds = _chunks(0)
    ours = _computed(SegmentationTask.marginal_metric(), preds, target)
    best = min(((_reference_der(target, (preds > t).astype(int))[0], t)
                for t in np.linspace(0.0, 1.0, 51, dtype=np.float32)), key=lambda row: row[0])
    assert ours["DiarizationErrorRate/Marginal"] == pytest.approx(best[0], abs=1e-5)
    assert ours["DiarizationErrorRate/Threshold"] == pytest.approx(best[1], abs=1e-6)
    assert 0 < best[0] < 1


def test_pipeline_der_and_components_match_pyannote_metrics_on_hard_decisions():
    target, preds = _chunks(1)
    hard = (preds > 0.5).astype(np.float32)
    ours = _computed(SegmentationTask.default_metric(None), hard, target)
    der, confusion, false_alarm, miss = _reference_der(target, hard.astype(int))
    assert ours["DiarizationErrorRate"] == pytest.approx(der, abs=1e-5)
    assert ours["DiarizationErrorRate/Confusion"] == pytest.approx(confusion, abs=1e-5)
    assert ours["DiarizationErrorRate/FalseAlarm"] == pytest.approx(false_alarm, abs=1e-5)
    assert ours["DiarizationErrorRate/Miss"] == pytest.approx(miss, abs=1e-5)
    assert 0 < der < 1


def test_metric_names_are_the_seed_names_plus_the_marginal_der_and_the_baseline():
    names = {*SegmentationTask.default_metric(None), *SegmentationTask.marginal_metric(),
             *SegmentationTask.baseline_metrics(), "loss/val/segmentation", "loss/val/vad", "loss/val"}
    assert names == set(SEG_METRICS)
    assert next(iter(SegmentationTask.default_metric(None))) == SEG_OBJECTIVE  # pyannote monitors the first


# --- a model whose decodings disagree, through the task's own validation step -------------------------

FRAMES = 60
# target: speaker 1 alone on frames 0-19, speaker 2 alone on 20-39, silence on 40-59 (speaker 3 never)
TARGET = np.zeros((FRAMES, 3), dtype=np.float32)
TARGET[:20, 0] = 1
TARGET[20:40, 1] = 1
EMPTY, S1, S2, S3, S12, S13, S23 = range(7)  # pyannote's powerset classes for 3 speakers, 2 per frame


def _frames(*rows: tuple[range, dict[int, float]]) -> torch.Tensor:
    """(1, frames, classes) log-probabilities from per-range class probabilities."""
    probs = torch.zeros(FRAMES, 7)
    for frames, classes in rows:
        for powerset_class, p in classes.items():
            probs[frames.start:frames.stop, powerset_class] = p
    return probs.clamp_min(1e-6).log().unsqueeze(0)


# argmax says {1, 2} wherever anybody speaks (40 frames of false alarm on 40 of speech: DER 1.0);
# its marginals, P(1) = 1.0 and P(2) = 0.4 on frames 0-19 and the reverse on 20-39, are perfect at 0.5
MARGINAL_ONLY = _frames((range(0, 20), {S1: 0.3, S12: 0.4, S13: 0.3}), (range(20, 40), {S2: 0.3, S12: 0.4, S23: 0.3}),
                        (range(40, 60), {EMPTY: 0.9, S1: 0.1}))
# a plain model: right except frames 15-19, given to speaker 2 (5 frames of confusion: DER 0.125 both ways)
PLAIN = _frames((range(0, 15), {S1: 0.8, EMPTY: 0.2}), (range(15, 40), {S2: 0.8, EMPTY: 0.2}),
                (range(40, 60), {EMPTY: 0.9, S1: 0.1}))


class FixedOutputModel(torch.nn.Module):
    """Stands in for PyanNet's forward only: the task's loss, decoding and metric code all run for real."""

    def __init__(self, log_probs: torch.Tensor):
        super().__init__()
        self.log_probs = log_probs
        self.powerset = Powerset(3, 2)
        self.logged: dict[str, object] = {}

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.log_probs.expand(len(waveform), -1, -1)

    def log(self, name, value, **options) -> None:
        self.logged[name] = value

    def log_dict(self, metrics, **options) -> None:
        self.logged.update(metrics)


def _validate(log_probs: torch.Tensor) -> dict[str, float]:
    task = SegmentationTask.__new__(SegmentationTask)  # no protocol needed: only the validation step runs
    task._metric, task.loss_config = None, SegLossConfig(name="bce")
    task.model = FixedOutputModel(log_probs)
    task.setup_validation_metric()
    # targets as pyannote's loader gives them: uint8
    target = torch.from_numpy(TARGET).to(torch.uint8).unsqueeze(0).expand(2, -1, -1)
    batch = {"X": torch.zeros(2, 1, 16000), "y": target}
    task.validation_step(batch, 0)
    metrics = {**task.model.validation_metric.compute(), **task.model.marginal_metric.compute(),
               **{name: value for metric in task.model.baseline_metrics for name, value in metric.compute().items()}}
    return {name: float(value) for name, value in metrics.items()}


def test_a_model_good_only_on_the_unused_decoding_loses_the_search(tmp_path):
    marginal_only, plain = _validate(MARGINAL_ONLY), _validate(PLAIN)
    assert marginal_only["DiarizationErrorRate"] == pytest.approx(1.0, abs=1e-6)
    assert marginal_only["DiarizationErrorRate/FalseAlarm"] == pytest.approx(1.0, abs=1e-6)
    assert marginal_only["DiarizationErrorRate/Marginal"] == pytest.approx(0.0, abs=1e-6)
    assert plain["DiarizationErrorRate"] == pytest.approx(0.125, abs=1e-6)
    assert plain["DiarizationErrorRate/Marginal"] == pytest.approx(0.125, abs=1e-6)
    # the trivial baselines on the same chunks (40 speech frames of 60): one speaker on all 60 frames, 20 of
    # confusion + 20 of false alarm; one speaker on the 40 speech frames, 20 of confusion
    for metrics in (marginal_only, plain):
        assert metrics["DiarizationErrorRate/OneSpeakerWholeChunk"] == pytest.approx(1.0, abs=1e-6)
        assert metrics["DiarizationErrorRate/OneSpeakerOracleSpeech"] == pytest.approx(0.5, abs=1e-6)

    # the search ranks trials from their metrics.jsonl by the objective
    for trial_id, metrics in (("marginal_only", marginal_only), ("plain", plain)):
        (tmp_path / "trials" / trial_id).mkdir(parents=True)
        (tmp_path / "trials" / trial_id / "metrics.jsonl").write_text(json.dumps({**metrics, "epoch": 0}) + "\n")
    trials = [("marginal_only", {}, False), ("plain", {}, False)]
    assert [row["trial_id"] for row in trial_rows(tmp_path, objective=SEG_OBJECTIVE, epochs=1, trials=trials)] == [
        "plain", "marginal_only"]
    # ... which the decoding the pipeline does not use would have turned round
    assert [row["trial_id"] for row in trial_rows(tmp_path, objective="DiarizationErrorRate/Marginal", epochs=1,
                                                  trials=trials)] == ["marginal_only", "plain"]
