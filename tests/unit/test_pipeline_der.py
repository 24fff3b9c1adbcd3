"""The pipeline's DER report equals pyannote.metrics on constructed references and hypotheses."""

from __future__ import annotations

import pytest
from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

from dist_spk.pipeline.evaluate import baseline_reports, der_report


def annotation(uri: str, turns: list[tuple[float, float, str]]) -> Annotation:
    result = Annotation(uri=uri)
    for start, end, label in turns:
        result[Segment(start, end)] = label
    return result


def file(uri: str, turns, seconds: float) -> dict:
    return {"uri": uri, "annotation": annotation(uri, turns), "annotated": Timeline([Segment(0, seconds)], uri=uri)}


def test_one_speaker_for_two_is_half_confusion():
    reference = file("a", [(0, 10, "A"), (10, 20, "B")], 20)
    report = der_report([(reference, annotation("a", [(0, 20, "x")]))])
    (row,) = report["files"]
    assert row["collar_0"] == pytest.approx({"der": 0.5, "confusion": 0.5, "false_alarm": 0.0, "miss": 0.0,
                                             "speech_seconds": 20.0})
    assert (row["speakers"], row["hypothesis_speakers"]) == (2, 1)


def test_overlap_missed_and_false_alarm_match_pyannote_metrics_at_both_collars():
    cases = [
        (file("a", [(0, 10, "A"), (8, 20, "B"), (25, 30, "A")], 32),  # overlap 8-10
         annotation("a", [(0, 9, "x"), (9, 21, "y"), (26, 31.5, "x")])),
        (file("b", [(1, 4, "C"), (3, 9, "D"), (9.5, 14, "C")], 15),
         annotation("b", [(0.5, 9, "u"), (3, 5, "v"), (10, 14, "u"), (14.5, 15, "w")])),
    ]
    report = der_report(cases)
    for name, collar in (("collar_0", 0.0), ("collar_0.25", 0.5)):  # ±0.25 s = pyannote's total width 0.5
        metric = DiarizationErrorRate(collar=collar, skip_overlap=False)
        for (reference, hypothesis), row in zip(cases, report["files"], strict=True):
            expected = metric(reference["annotation"], hypothesis, uem=reference["annotated"], detailed=True)
            assert row[name]["der"] == pytest.approx(expected["diarization error rate"])
            assert row[name]["miss"] == pytest.approx(expected["missed detection"] / expected["total"])
        assert report["overall"][name]["der"] == pytest.approx(abs(metric))
    assert report["overall"]["collar_0.25"]["der"] < report["overall"]["collar_0"]["der"]
    overlap_missed = der_report([(cases[0][0], annotation("a", [(0, 10, "x"), (10, 20, "y"), (25, 30, "x")]))])
    assert overlap_missed["overall"]["collar_0"]["miss"] == pytest.approx(2 / 27)  # overlap is scored


def test_trivial_baselines_score_what_labelling_everything_as_one_speaker_scores():
    # 9 s of speech (A 0-4, B 3-6 overlapping 1 s, A 8-10) in a 12 s file
    files = [file("a", [(0, 4, "A"), (3, 6, "B"), (8, 10, "A")], 12)]
    baselines = baseline_reports(files)
    oracle = baselines["one_speaker_oracle_speech"]["collar_0"]
    # B's 2 s alone are confused; one of the two overlapping speakers is missed; no false alarm
    assert oracle == pytest.approx({"der": 3 / 9, "confusion": 2 / 9, "false_alarm": 0.0, "miss": 1 / 9,
                                    "speech_seconds": 9.0})
    whole = baselines["one_speaker_whole_file"]["collar_0"]
    assert whole["false_alarm"] == pytest.approx(4 / 9)  # 6-8 and 10-12: non-speech labelled speech
    assert whole["der"] > oracle["der"]
