"""RTTM/UEM parsing: every bad line is reported with its number; writing round-trips."""

from __future__ import annotations

from dist_spk.data.rttm import Region, Turn, format_rttm, format_uem, parse_rttm, parse_uem


def test_rttm_round_trip(tmp_path):
    turns = [Turn("f1", 0.5, 1.25, "alice"), Turn("f1", 1.0, 2.0, "bob")]
    path = tmp_path / "f1.rttm"
    path.write_text(format_rttm(turns))
    parsed, problems = parse_rttm(path, uri="f1")
    assert problems == []
    assert [(t.onset, t.duration, t.speaker, t.line) for t in parsed] == [(0.5, 1.25, "alice", 1), (1.0, 2.0, "bob", 2)]
    assert parsed[1].end == 3.0


def test_every_bad_rttm_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "f1.rttm"
    path.write_text(
        "SPEAKER f1 1 0.0 1.0 <NA> <NA> a <NA> <NA>\n"  # 1 good
        "SPEAKER f1 1 0.0 1.0 <NA> <NA> a <NA>\n"  # 2 nine fields
        "SPEAKER f1 1 zero 1.0 <NA> <NA> a <NA> <NA>\n"  # 3 onset not a number
        "SPEAKER f1 1 2.0 -1.0 <NA> <NA> a <NA> <NA>\n"  # 4 negative duration
        "SPEAKER f2 1 2.0 1.0 <NA> <NA> a <NA> <NA>\n"  # 5 other uri
        "\n# a comment\n"
        "LEXEME f1 1 2.0 1.0 <NA> <NA> a <NA> <NA>\n"  # 8 not SPEAKER
        "SPEAKER f1 1 2.0 0 <NA> <NA> a <NA> <NA>\n"  # 9 zero duration
    )
    turns, problems = parse_rttm(path, uri="f1")
    assert len(turns) == 1
    by_line = {p.line: p.message for p in problems}
    assert sorted(by_line) == [2, 3, 4, 5, 8, 9]
    assert "expected 10 fields, found 9" in by_line[2]
    assert "must be numbers" in by_line[3]
    assert "duration must be > 0, found -1.0" in by_line[4]
    assert "'f2' does not match the file's uri 'f1'" in by_line[5]
    assert "SPEAKER" in by_line[8]
    assert "duration must be > 0" in by_line[9]
    assert all(p.path == path for p in problems)
    assert str(problems[0]).startswith(f"{path}:2: error:")


def test_uem_parsing(tmp_path):
    path = tmp_path / "f1.uem"
    path.write_text(format_uem([Region("f1", 0.0, 10.0)]) + "f1 1 5.0 3.0\nf1 1 a b\nf1 1 0\n")
    regions, problems = parse_uem(path, uri="f1")
    assert [(r.start, r.end) for r in regions] == [(0.0, 10.0)]
    assert [p.line for p in problems] == [2, 3, 4]
