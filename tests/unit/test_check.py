"""`dist-spk data check`: accepts good datasets, names the culprit of every defect class."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dist_spk.data.check import check_diarization, speech_and_overlap
from dist_spk.data.rttm import Turn
from tests.conftest import run_cli, write_tone


def errors_of(root: Path) -> list[str]:
    report = check_diarization(root, progress=False)
    return [str(p) for p in report.errors]


def test_hand_made_dataset_passes_with_stats(seed_dataset):
    report = check_diarization(seed_dataset, progress=False)
    assert report.ok, [str(p) for p in report.problems]
    train = report.stats["train"]
    assert train.files == 3
    assert train.hours == pytest.approx(3 * 12.0 / 3600)
    # per file: speech 0.5-7.0 and 8.0-11.5 = 10 s; overlap 4.0-4.5 = 0.5 s
    assert train.speech_hours == pytest.approx(3 * 10.0 / 3600)
    assert train.overlap_ratio == pytest.approx(0.05)
    assert train.speakers == 2
    assert train.speakers_per_file == [2, 2, 2]
    assert set(train.sample_rates) == {16000}


def test_speech_and_overlap_sweep():
    turns = [Turn("f", 0, 2, "a"), Turn("f", 1, 2, "b"), Turn("f", 1.5, 0.5, "c"), Turn("f", 5, 1, "a")]
    speech, overlap = speech_and_overlap(turns)
    assert speech == pytest.approx(4.0)  # 0-3 and 5-6
    assert overlap == pytest.approx(1.0)  # 1-2
    assert speech_and_overlap([Turn("f", 0, 1, "a"), Turn("f", 1, 1, "b")]) == (2.0, 0.0)  # touching


def _set_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


# Each defect: how to break the dataset, and what the one error must say (file and line included).
DEFECTS = {
    "missing audio": (
        lambda r: (r / "train/wav/a2.wav").unlink(), "train/wav/a2.wav: error: missing audio for uri 'a2'"
    ),
    "missing rttm": (lambda r: (r / "dev/rttm/b1.rttm").unlink(), "dev/rttm/b1.rttm: error: missing RTTM"),
    "missing list": (lambda r: (r / "dev.txt").unlink(), "dev.txt: error: missing: the dev list is required"),
    "undecodable audio": (
        lambda r: (r / "train/wav/a1.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10),
        "train/wav/a1.wav: error: does not decode as audio",
    ),
    "empty audio": (lambda r: (r / "train/wav/a1.wav").write_bytes(b""), "train/wav/a1.wav: error: file is empty"),
    "bad rttm field": (
        lambda r: _set_line(r / "train/rttm/a3.rttm", 2, "SPEAKER a3 1 4.0 3.0 <NA> <NA> bob <NA>"),
        "train/rttm/a3.rttm:2: error: expected 10 fields, found 9",
    ),
    "non-numeric onset": (
        lambda r: _set_line(r / "train/rttm/a3.rttm", 3, "SPEAKER a3 1 8,0 3.5 <NA> <NA> alice <NA> <NA>"),
        "train/rttm/a3.rttm:3: error: onset and duration must be numbers",
    ),
    "negative duration": (
        lambda r: _set_line(r / "train/rttm/a1.rttm", 1, "SPEAKER a1 1 0.5 -4.0 <NA> <NA> alice <NA> <NA>"),
        "train/rttm/a1.rttm:1: error: duration must be > 0, found -4.0",
    ),
    "rttm uri mismatch": (
        lambda r: _set_line(r / "train/rttm/a2.rttm", 2, "SPEAKER a1 1 4.0 3.0 <NA> <NA> bob <NA> <NA>"),
        "train/rttm/a2.rttm:2: error: uri 'a1' does not match the file's uri 'a2'",
    ),
    "segment past the end": (
        lambda r: _set_line(r / "test/rttm/c1.rttm", 3, "SPEAKER c1 1 8.0 6.0 <NA> <NA> alice <NA> <NA>"),
        "test/rttm/c1.rttm:3: error: turn ends at 14.000s, past the end of the audio (12.000s)",
    ),
    "uem past the end": (
        lambda r: (r / "dev/uem/b1.uem").write_text("b1 1 0.000 25.000\n"),
        "dev/uem/b1.uem:1: error: region ends at 25.000s, past the end of the audio (12.000s)",
    ),
    "truncated audio": (
        lambda r: write_tone(r / "dev/wav/b1.wav", 5.0),  # the RTTM and UEM still say 12 s
        "dev/uem/b1.uem:1: error: region ends at 12.000s, past the end of the audio (5.000s)",
    ),
    "empty list": (lambda r: (r / "dev.txt").write_text("\n"), "dev.txt: error: empty list: no uri"),
    "uri in two splits": (
        lambda r: (r / "dev.txt").write_text("b1\na2\n"),
        "dev.txt:2: error: uri 'a2' already listed at train.txt line 2",
    ),
    "uri twice in a split": (
        lambda r: (r / "train.txt").write_text("a1\na2\na3\na1\n"),
        "train.txt:4: error: uri 'a1' already listed at line 1",
    ),
}


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_each_defect_is_reported_naming_the_culprit(seed_dataset, defect):
    break_it, expected = DEFECTS[defect]
    break_it(seed_dataset)
    errors = errors_of(seed_dataset)
    assert any(expected in e for e in errors), errors
    assert all(str(seed_dataset) in e for e in errors)


def test_all_problems_are_reported_not_just_the_first(seed_dataset):
    for defect in ("missing audio", "negative duration", "uem past the end", "uri in two splits"):
        DEFECTS[defect][0](seed_dataset)
    errors = errors_of(seed_dataset)
    for defect in ("missing audio", "negative duration", "uem past the end", "uri in two splits"):
        assert any(DEFECTS[defect][1] in e for e in errors), (defect, errors)


def test_missing_test_split_and_uem_are_fine(seed_dataset):
    (seed_dataset / "test.txt").unlink()
    (seed_dataset / "train/uem/a1.uem").unlink()
    report = check_diarization(seed_dataset, progress=False)
    assert report.ok
    assert [p.message for p in report.problems] == ["missing: no test split, evaluation will need one"]


def test_cli_exits_non_zero_with_every_problem_and_no_traceback(seed_dataset, tmp_path):
    DEFECTS["negative duration"][0](seed_dataset)
    DEFECTS["missing audio"][0](seed_dataset)
    report = tmp_path / "report.json"
    result = run_cli("data", "check", str(seed_dataset), "--json", str(report))
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "train/rttm/a1.rttm:1: error: duration must be > 0" in result.stdout
    assert "train/wav/a2.wav: error: missing audio" in result.stdout
    assert "2 error(s)" in result.stdout
    record = json.loads(report.read_text())
    assert record["ok"] is False and len(record["problems"]) == 2
    assert record["stats"]["train"]["files"] == 3


def test_cli_accepts_a_good_dataset(seed_dataset):
    result = run_cli("data", "check", str(seed_dataset))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s)" in result.stdout


def test_cli_on_a_missing_folder_is_one_clear_error(tmp_path):
    result = run_cli("data", "check", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "nowhere: no such file or folder" in result.stderr
