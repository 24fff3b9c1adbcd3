"""The seed DER metrics (threshold search) agree with pyannote.metrics on constructed chunks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

from dist_spk.segmentation.task import SEG_METRICS, SegmentationTask


def _annotation(activity: np.ndarray, uri: str) -> Annotation:
    """(speakers, frames) 0/1 -> Annotation with 1 s frames."""
    annotation = Annotation(uri=uri)
    for speaker, row in enumerate(activity):
        for frame in np.flatnonzero(row):
            annotation[Segment(float(frame), float(frame + 1)), f"{speaker}:{frame}"] = f"s{speaker}"
    return annotation.support()


def test_optimal_der_matches_pyannote_metrics_at_every_threshold():
    rng = np.random.default_rng(0)
    chunks, speakers, frames = 4, 3, 40
    target = (rng.random((chunks, speakers, frames)) < 0.35).astype(np.float32)
    # predictions: the target with speakers permuted per chunk, blurred, and some frames flipped
    preds = np.empty_like(target)
    for c in range(chunks):
        noisy = np.clip(target[c] * 0.7 + 0.15 + rng.normal(0, 0.3, (speakers, frames)), 0, 1)
        preds[c] = noisy[rng.permutation(speakers)]
    metrics = SegmentationTask.default_metric(None)
    for metric in metrics.values():
        metric.update(torch.from_numpy(preds), torch.from_numpy(target))
    ours = {name: float(metric.compute()) for name, metric in metrics.items()}

    best = None
    for threshold in np.linspace(0.0, 1.0, 51, dtype=np.float32):
        reference = DiarizationErrorRate(collar=0.0, skip_overlap=False)
        for c in range(chunks):
            reference(_annotation(target[c], f"c{c}"), _annotation((preds[c] > threshold).astype(int), f"c{c}"),
                      uem=Timeline([Segment(0, frames)]))
        total = reference["total"]
        row = (abs(reference), threshold, reference["confusion"] / total, reference["false alarm"] / total,
               reference["missed detection"] / total)
        if best is None or row[0] < best[0] - 1e-9:
            best = row
    der, threshold, confusion, false_alarm, miss = best
    assert ours["DiarizationErrorRate"] == pytest.approx(der, abs=1e-5)
    assert ours["DiarizationErrorRate/Threshold"] == pytest.approx(threshold, abs=1e-6)
    assert ours["DiarizationErrorRate/Confusion"] == pytest.approx(confusion, abs=1e-5)
    assert ours["DiarizationErrorRate/FalseAlarm"] == pytest.approx(false_alarm, abs=1e-5)
    assert ours["DiarizationErrorRate/Miss"] == pytest.approx(miss, abs=1e-5)
    assert 0 < der < 1


def test_metric_names_are_the_seed_names():
    assert set(SegmentationTask.default_metric(None)) | {"loss/val/segmentation", "loss/val/vad", "loss/val"} == set(
        SEG_METRICS)
