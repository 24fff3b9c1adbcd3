"""Speaker datasets: VoxCeleb, Kaldi, CSV and RTTM-cut manifests; trial lists; checks."""

from __future__ import annotations

import numpy as np
import pytest

from dist_spk.data.rttm import Turn
from dist_spk.data.speakers import (
    check_speakers,
    generate_trials,
    heldout_split,
    load_speakers,
    solo_stretches,
)
from dist_spk.data.trials import Trial, balanced_trials, format_trials, parse_trials
from dist_spk.errors import DataError
from tests.conftest import write_tone


@pytest.fixture
def voxceleb(tmp_path):
    root = tmp_path / "vox"
    for s, speaker in enumerate(["id001", "id002", "id003", "id004"]):
        for session in ("sA", "sB"):
            for utt in ("00001", "00002"):
                write_tone(root / speaker / session / f"{utt}.wav", 1.0, seed=s)
    return root


def test_voxceleb_layout(voxceleb):
    manifest = load_speakers(voxceleb)
    assert manifest.format == "voxceleb"
    assert manifest.speakers() == ["id001", "id002", "id003", "id004"]
    assert len(manifest.utterances) == 16
    assert "id002/sB/00001.wav" in manifest.by_key()
    assert manifest.problems == []


def test_kaldi_folder_with_segments(tmp_path):
    root = tmp_path / "kaldi"
    write_tone(root / "audio" / "rec1.wav", 6.0)
    (root / "wav.scp").write_text("rec1 audio/rec1.wav\nrec2 sox x.wav -t wav - |\n")
    (root / "segments").write_text("u1 rec1 0.0 2.0\nu2 rec1 2.0 5.0\nu3 rec2 0 1\n")
    (root / "utt2spk").write_text("u1 alice\nu2 bob\nu3 carol\nu4 dave\n")
    manifest = load_speakers(root)
    assert manifest.format == "kaldi"
    assert [(u.key, u.speaker, u.start, u.end) for u in manifest.utterances] == [
        ("u1", "alice", 0.0, 2.0), ("u2", "bob", 2.0, 5.0)]
    assert manifest.utterances[0].path == root / "audio" / "rec1.wav"
    messages = [str(p) for p in manifest.problems]
    assert any("wav.scp:2" in m and "piped commands" in m for m in messages)
    assert any("utt2spk:4" in m and "'u4' is not in segments" in m for m in messages)


def test_kaldi_missing_files_are_named(tmp_path):
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "wav.scp").write_text("")
    manifest = load_speakers(tmp_path / "k")
    assert [str(p.path.name) for p in manifest.problems] == ["utt2spk"]


def test_csv_with_segments_and_bad_rows(tmp_path):
    write_tone(tmp_path / "a.wav", 4.0)
    path = tmp_path / "list.csv"
    path.write_text("path,speaker,start,end\na.wav,alice,0,1.5\na.wav,bob,1.5,4\na.wav,carol,3,2\n,dave,,\n")
    manifest = load_speakers(path)
    assert [(u.speaker, u.start, u.end) for u in manifest.utterances] == [("alice", 0.0, 1.5), ("bob", 1.5, 4.0)]
    assert [p.line for p in manifest.problems] == [4, 5]
    (tmp_path / "bad.csv").write_text("file,label\n")
    assert "header must have path,speaker" in str(load_speakers(tmp_path / "bad.csv").problems[0])


def test_solo_stretches_drop_overlap_and_merge_touching_turns():
    turns = [Turn("f", 0, 4, "a"), Turn("f", 3, 3, "b"), Turn("f", 6, 2, "b"), Turn("f", 9, 1, "a")]
    assert solo_stretches(turns) == [("a", 0, 3), ("b", 4, 8), ("a", 9, 10)]


def test_segments_cut_from_a_diarization_dataset(seed_dataset):
    manifest = load_speakers(seed_dataset, split="train", min_seconds=2.0)
    assert manifest.format == "diarization"
    # per file: alice 0.5-4.0 (3.5 s), bob 4.5-7.0 (2.5 s), alice 8.0-11.5 (3.5 s); labels are file-scoped
    spans = [(u.speaker, u.start, u.end) for u in manifest.utterances if u.path.stem == "a1"]
    assert spans == [("a1/alice", 0.5, 4.0), ("a1/bob", 4.5, 7.0), ("a1/alice", 8.0, 11.5)]
    assert len(load_speakers(seed_dataset, min_seconds=3.0).utterances) == 6
    scoped = load_speakers(seed_dataset, speaker_scope="global")
    assert scoped.speakers() == ["alice", "bob"]


def test_trials_parse_and_problems(tmp_path):
    path = tmp_path / "trials.txt"
    path.write_text("1 a.wav b.wav\n0 a.wav c.wav\n2 a.wav c.wav\n1 a.wav\n")
    trials, problems = parse_trials(path)
    assert trials == [Trial(True, "a.wav", "b.wav", 1), Trial(False, "a.wav", "c.wav", 2)]
    assert [p.line for p in problems] == [3, 4]


def test_balanced_trials_are_balanced_correct_and_deterministic():
    utterances = {f"s{i}": [f"s{i}/u{j}.wav" for j in range(4)] for i in range(5)}
    trials = balanced_trials(utterances, rng=np.random.default_rng(0))
    targets = [t for t in trials if t.target]
    assert len(targets) == 5 * 6 and len(trials) == 2 * len(targets)
    for t in trials:
        assert (t.enroll.split("/")[0] == t.test.split("/")[0]) == t.target
    assert len({(t.enroll, t.test) for t in trials}) == len(trials)
    assert trials == balanced_trials(utterances, rng=np.random.default_rng(0))
    assert len([t for t in balanced_trials(utterances, rng=np.random.default_rng(0), max_per_class=7) if t.target]) == 7
    with pytest.raises(ValueError):
        balanced_trials({"s0": ["a", "b"]}, rng=np.random.default_rng(0))


def test_heldout_split_and_generated_trials(voxceleb):
    manifest = load_speakers(voxceleb)
    train, heldout = heldout_split(manifest, fraction=0.5, seed=1)
    assert len(heldout) == 2 and not set(train) & set(heldout) and sorted(train + heldout) == manifest.speakers()
    trials = generate_trials(manifest, heldout, seed=1)
    speakers = {u.key: u.speaker for u in manifest.utterances}
    assert {speakers[t.enroll] for t in trials} | {speakers[t.test] for t in trials} <= set(heldout)
    with pytest.raises(DataError, match="cannot spare"):
        heldout_split(manifest, fraction=1.0)


def test_check_speakers_finds_unknown_trial_entries_bad_audio_and_missing_paths(voxceleb, tmp_path):
    (voxceleb / "id001" / "sA" / "00001.wav").write_bytes(b"not audio at all")
    trials = tmp_path / "trials.txt"
    trials.write_text(format_trials([Trial(True, "id002/sA/00001.wav", "id002/sB/00002.wav"),
                                     Trial(False, "id003/sA/00001.wav", "id009/sA/00001.wav")]))
    result = check_speakers(load_speakers(voxceleb), trials_path=trials, progress=False)
    messages = [str(p) for p in result.problems]
    assert not result.ok
    assert any("id001/sA/00001.wav: error: does not decode" in m for m in messages)
    assert any("trials.txt:2: error: unknown utterance 'id009/sA/00001.wav'" in m for m in messages)
    assert len(result.trials) == 2
    missing = check_speakers(load_speakers(voxceleb), trials_path=tmp_path / "nope.txt", progress=False)
    assert any("nope.txt: error: trial list not found" in str(p) for p in missing.problems)


def test_check_speakers_flags_segments_past_the_end(tmp_path):
    write_tone(tmp_path / "a.wav", 2.0)
    (tmp_path / "list.csv").write_text("path,speaker,start,end\na.wav,alice,0,1\na.wav,alice,1,3.5\n")
    result = check_speakers(load_speakers(tmp_path / "list.csv"), progress=False)
    assert [p.message for p in result.problems if p.severity == "error"] == [
        "utterance 'a.wav@1.000-3.500' ends at 3.500s, past the end of the audio (2.000s)"]
    assert result.seconds == pytest.approx(3.5)
