"""The synthetic espeak-ng corpus: deterministic, exact RTTMs, and accepted by the checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from dist_spk.data.check import check_diarization
from dist_spk.data.layout import SeedLayout
from dist_spk.data.rttm import parse_rttm, parse_uem
from dist_spk.data.speakers import check_speakers, load_speakers
from dist_spk.data.synth import synthesize
from dist_spk.errors import DataError

pytestmark = pytest.mark.slow


def test_same_seed_same_bytes_other_seed_other_corpus(tiny_corpus, tmp_path):
    again = synthesize(tmp_path / "again", seed=0, size="tiny")
    first = json.loads((tiny_corpus / "corpus.json").read_text())
    assert json.loads((tmp_path / "again" / "corpus.json").read_text())["sha256"] == first["sha256"]
    assert again.files == first["files"]
    synthesize(tmp_path / "other", seed=1, size="tiny")
    assert json.loads((tmp_path / "other" / "corpus.json").read_text())["sha256"] != first["sha256"]


def test_rttm_turns_are_exactly_the_speech(tmp_path):
    synthesize(tmp_path / "clean", seed=3, size="tiny", noise=False)
    layout = SeedLayout(tmp_path / "clean" / "diar")
    overlapped = 0.0
    for split in layout.splits():
        for file in layout.files(split):
            audio, rate = soundfile.read(file.audio, dtype="float32")
            assert rate == 16000
            turns, problems = parse_rttm(file.rttm, uri=file.uri)
            assert not problems and 2 <= len({t.speaker for t in turns}) <= 4
            mask = np.zeros(len(audio), dtype=bool)
            for t in turns:
                start, end = round(t.onset * rate), round(t.end * rate)
                assert end <= len(audio)
                segment = audio[start:end]
                # utterances are trimmed at 2% of their peak: both edges (5 ms) are well above silence
                floor = 0.01 * np.abs(segment).max()
                assert np.abs(segment[:80]).max() > floor and np.abs(segment[-80:]).max() > floor
                mask[start:end] = True
            assert np.all(audio[~mask] == 0.0)  # no noise: nothing outside the turns
            (region,), _ = parse_uem(file.uem, uri=file.uri)
            assert region.start == 0.0 and region.end == pytest.approx(len(audio) / rate, abs=1e-6)
            overlapped += sum(max(0.0, min(a.end, b.end) - max(a.onset, b.onset))
                              for i, a in enumerate(turns) for b in turns[i + 1:])
    assert overlapped > 0  # conversations do overlap


def test_corpus_passes_the_checks_and_holds_out_trial_speakers(tiny_corpus):
    report = check_diarization(tiny_corpus / "diar", progress=False)
    assert report.ok, [str(p) for p in report.problems]
    assert report.stats["train"].files == 3 and report.stats["test"].files == 1
    manifest = load_speakers(tiny_corpus / "spk")
    result = check_speakers(manifest, trials_path=tiny_corpus / "spk" / "trials.txt", progress=False)
    assert result.ok, [str(p) for p in result.problems]
    assert sum(t.target for t in result.trials) * 2 == len(result.trials)
    speakers = {u.key: u.speaker for u in manifest.utterances}
    trial_speakers = {speakers[t.enroll] for t in result.trials} | {speakers[t.test] for t in result.trials}
    meta = json.loads((tiny_corpus / "corpus.json").read_text())
    assert len(trial_speakers) == 4 and len(manifest.speakers()) == len(meta["voices"]) == 10
    # diarization train uses training speakers only; dev and test use disjoint halves of the held-out ones
    layout = SeedLayout(tiny_corpus / "diar")
    labels = {split: {t.speaker for f in layout.files(split) for t in parse_rttm(f.rttm)[0]}
              for split in ("train", "dev", "test")}
    assert labels["train"] and not labels["train"] & trial_speakers
    assert labels["dev"] <= trial_speakers and labels["test"] <= trial_speakers
    assert labels["dev"] and labels["test"] and not labels["dev"] & labels["test"]
    assert sorted(p.name for p in (tiny_corpus / "noise").iterdir()) == [
        "babble.wav", "brown.wav", "hum.wav", "pink.wav", "white.wav"]


def test_refuses_a_non_empty_folder_and_unknown_size(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("")
    with pytest.raises(DataError, match="busy exists and is not an empty folder"):
        synthesize(tmp_path / "busy", size="tiny")
    with pytest.raises(DataError, match="valid sizes: tiny, compact, small, medium"):
        synthesize(tmp_path / "new", size="huge")
    with pytest.raises(DataError, match="valid styles: demo, heldout"):
        synthesize(tmp_path / "new", size="tiny", style="unseen")


def _voices(corpus) -> set[tuple]:
    meta = json.loads((corpus / "corpus.json").read_text())
    return {(v["accent"], v["variant"], v["pitch"], v["speed"]) for v in meta["voices"]}


def test_heldout_style_shares_no_voice_with_any_demo_corpus_and_is_noisier(tiny_corpus, tmp_path):
    from dist_spk.data.synth import STYLES, make_voices

    heldout = synthesize(tmp_path / "heldout", seed=0, size="tiny", style="heldout")
    assert heldout.style == "heldout" and json.loads((tmp_path / "heldout" / "corpus.json").read_text())["style"] == (
        "heldout")
    assert not _voices(tmp_path / "heldout") & _voices(tiny_corpus)
    # whatever the seed or size: the two styles' voice grids never meet
    demo = {(v.accent, v.variant, v.pitch, v.speed) for v in make_voices(2000, np.random.default_rng(5))}
    unseen = {(v.accent, v.variant, v.pitch, v.speed)
              for v in make_voices(2000, np.random.default_rng(5), STYLES["heldout"])}
    assert demo and unseen and not demo & unseen
    for snr in ("conversation_snr_db", "session_snr_db"):  # noisier at both ends of the SNR range
        assert all(low < high for low, high in zip(getattr(STYLES["heldout"], snr), getattr(STYLES["demo"], snr),
                                                   strict=True))
    assert check_diarization(tmp_path / "heldout" / "diar", progress=False).ok
