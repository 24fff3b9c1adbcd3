"""Nothing lost: folders the project did not make are never replaced, outputs are never silently overwritten, a torn
``metrics.jsonl`` still reads, and numbers that are not finite or out of range stop before anything starts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from dist_spk.errors import DistSpkError
from tests.conftest import run_cli, write_tone


def tree_hash(root: Path) -> str:
    """Every file's relative path and bytes under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def speaker_folder(root: Path) -> Path:
    for number, speaker in enumerate(("alice", "bob", "carol", "dave", "erin", "frank")):
        for index in range(2):
            write_tone(root / speaker / "s1" / f"{index}.wav", 0.6, seed=index + 3 * number)
    return root


def test_a_dataset_with_its_own_manifest_survives_prepare_on_itself(tmp_path):
    from dist_spk.data.training_cache import prepare

    root = speaker_folder(tmp_path / "nemo_like")
    (root / "manifest.json").write_text('{"audio_filepath": "alice/s1/0.wav", "duration": 0.6}\n')
    before = tree_hash(root)
    with pytest.raises(DistSpkError, match="dataset's own files"):
        prepare(sorted(root.rglob("*.wav")), root)
    result = run_cli("data", "prepare", root, "--out", root)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert tree_hash(root) == before

    other = tmp_path / "not_a_cache"  # a folder with a manifest.json that this project did not make
    other.mkdir()
    (other / "manifest.json").write_text("{}")
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(DistSpkError, match="not a training cache dist_spk made"):
        prepare(sorted(root.rglob("*.wav")), other)
    assert (other / "notes.txt").read_text() == "keep me"


def test_a_cache_this_project_made_is_replaced_and_carries_its_mark(tmp_path):
    from dist_spk.data.training_cache import MARK, is_training_cache, prepare

    root = speaker_folder(tmp_path / "spk")
    cache = prepare(sorted(root.rglob("*.wav")), tmp_path / "cache", progress=False)
    assert (cache / MARK).is_file() and is_training_cache(cache)
    prepare(sorted(root.rglob("*.wav"))[:2], cache, progress=False)  # prepared again: replaced
    assert len(json.loads((cache / "manifest.json").read_text())["files"]) == 2


def test_a_torn_last_metrics_line_is_left_out_and_the_next_row_starts_a_line(tmp_path):
    from dist_spk.runs.run_dir import append_metrics, keep_epochs_before, read_metrics

    append_metrics(tmp_path, {"epoch": 0, "eer": 0.3})
    with (tmp_path / "metrics.jsonl").open("a") as handle:
        handle.write('{"epoch": 1, "eer": 0.')  # killed mid-append
    assert read_metrics(tmp_path) == [{"epoch": 0, "eer": 0.3}]
    append_metrics(tmp_path, {"epoch": 1, "eer": 0.2})
    assert read_metrics(tmp_path) == [{"epoch": 0, "eer": 0.3}, {"epoch": 1, "eer": 0.2}]
    keep_epochs_before(tmp_path, 1)
    assert read_metrics(tmp_path) == [{"epoch": 0, "eer": 0.3}]
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 0}\nnot json\n{"epoch": 1}\n')
    with pytest.raises(DistSpkError, match=r"metrics.jsonl:2"):
        read_metrics(tmp_path)


@pytest.mark.parametrize("args, words", [
    (["config", "show", "spk", "--set", "optim.lr=nan"], "optim.lr"),
    (["config", "show", "spk", "--set", "head.margin=inf"], "head.margin"),
    (["config", "show", "seg", "--set", "optim.weight_decay=-inf"], "optim.weight_decay"),
])
def test_numbers_that_are_not_finite_are_refused_with_their_key(args, words):
    result = run_cli(*args)
    assert result.returncode == 2 and words in result.stderr and "finite" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("spec, words", [
    ({"optim.lr": {"distribution": "log_uniform_values", "min": float("nan"), "max": 0.01}}, "finite"),
    ({"optim.lr": {"distribution": "uniform", "min": float("-inf"), "max": 0.01}}, "finite"),
    ({"head.margin": {"distribution": "q_uniform", "min": 0.1, "max": 0.4, "q": 0}}, "q must be > 0"),
    ({"head.margin": {"distribution": "normal", "mu": 0.2, "sigma": 0}}, "sigma must be > 0"),
])
def test_search_spaces_with_impossible_numbers_are_refused(spec, words):
    from dist_spk.tune.space import parse_space

    with pytest.raises(DistSpkError, match=words):
        parse_space({"parameters": spec}, "spk")


def test_a_range_reaching_a_value_the_config_refuses_and_a_huge_grid_are_refused():
    from dist_spk.config import load_config
    from dist_spk.tune.space import check_values, grid_of, parse_space

    config = load_config("spk", preset_name="local")
    with pytest.raises(DistSpkError, match=r"reaches -0.001.*optim.lr: must be > 0"):
        check_values(config, parse_space({"parameters": {"optim.lr": {"distribution": "uniform", "min": -1e-3,
                                                                      "max": 1e-2}}}, "spk"))
    check_values(config, parse_space({"parameters": {"optim.lr": {"values": [1e-3, 1e-2]}}}, "spk"))
    document = {"method": "grid", "parameters": {
        "optim.lr": {"distribution": "q_uniform", "min": 0.0001, "max": 1.0, "q": 1e-9}}}
    with pytest.raises(DistSpkError, match="at most 10,000"):
        grid_of(parse_space(document, "spk"), document)


def test_outputs_are_never_silently_overwritten(tmp_path):
    root = speaker_folder(tmp_path / "spk")
    trials = tmp_path / "trials.txt"
    trials.write_text("the user's own list\n")
    refused = run_cli("data", "trials", root, "-o", trials, "--fraction", "0.5")
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert trials.read_text() == "the user's own list\n"
    forced = run_cli("data", "trials", root, "-o", trials, "--fraction", "0.5", "--force")
    assert forced.returncode == 0, forced.stderr
    assert trials.read_text().startswith(("0 ", "1 "))


def test_a_search_never_writes_into_a_folder_holding_other_files(tmp_path):
    root = speaker_folder(tmp_path / "spk")
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "summary.csv").write_text("a user's own table\n")
    before = tree_hash(exp)
    result = run_cli("tune", "spk", "--data", root, "--out", exp, "--num-samples", "1")
    assert result.returncode == 2 and "not empty" in result.stderr and "Traceback" not in result.stderr
    assert tree_hash(exp) == before


@pytest.mark.parametrize("uri", ["s3://AKIAEXAMPLE:s3cr3t-value@bucket/exp", "s3://bucket/exp?secret_key=s3cr3t-value",
                                 "gs://user:s3cr3t-value@bucket/exp"])
def test_credentials_in_a_storage_uri_are_refused_without_being_repeated(uri, tmp_path):
    from dist_spk.runs.storage import normalize

    with pytest.raises(DistSpkError, match="credentials come from the cluster") as refused:
        normalize(uri)
    assert "s3cr3t-value" not in str(refused.value)
    result = run_cli("train", "spk", "--data", tmp_path, "--out", uri)
    assert result.returncode == 2 and "s3cr3t-value" not in result.stdout + result.stderr
    assert normalize("s3://bucket/exp?endpoint_override=127.0.0.1:9000") == "s3://bucket/exp?endpoint_override=127.0.0.1:9000"


def test_a_pickle_that_runs_code_is_refused_before_it_is_loaded(seed_dataset, tmp_path):
    import os

    import torch

    witness = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {witness}",))

    evil = tmp_path / "shared-bucket" / "best" / "checkpoint.ckpt"
    evil.parent.mkdir(parents=True)
    torch.save({"state_dict": {}, "pyannote.audio": {"versions": Payload()}}, evil)
    for args in (["evaluate", "pipeline", "--segmentation", evil, "--embedding", evil, "--data", "pyannote:sample"],
                 ["train", "seg", "--data", seed_dataset, "--out", tmp_path / "run", "--workers", "0", "--set",
                  f"model.init={evil}"],
                 ["evaluate", "seg", "--checkpoint", evil, "--data", seed_dataset]):
        result = run_cli(*args)
        assert result.returncode == 2 and "not a readable checkpoint" in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
    assert not witness.exists() and not (tmp_path / "run").exists()


def test_speaker_lists_with_impossible_times_or_encodings_name_the_line(tmp_path):
    from dist_spk.data.speakers import load_speakers

    wav = tmp_path / "rec.wav"
    write_tone(wav, 3.0)
    (tmp_path / "wav.scp").write_text("rec rec.wav\n")
    (tmp_path / "utt2spk").write_text("u1 alice\nu2 bob\nu3 carol\nu4 dave\n")
    (tmp_path / "segments").write_text("u1 rec 0.0 -1\nu2 rec nan 1.0\nu3 rec -0.5 1.0\nu4 rec 2.0 1.0\n")
    manifest = load_speakers(tmp_path, format="kaldi")
    assert [(u.key, u.start, u.end) for u in manifest.utterances] == [("u1", 0.0, None)]  # -1: to the end
    assert sorted((p.line, p.message.split(": ", 1)[1][:12]) for p in manifest.problems) == [
        (2, "times must b"), (3, "start -0.5 i"), (4, "end 1 must b")]

    spaced = tmp_path / "spaced.csv"
    spaced.write_text("\ufeffpath,speaker\nmy recordings/rec.wav,alice\n")  # a byte-order mark, a path with a space
    manifest = load_speakers(spaced, format="csv")
    assert any("white space" in p.message for p in manifest.problems)
    (tmp_path / "latin.csv").write_bytes("path,speaker\nrec.wav,Jos\xe9\n".encode("latin-1"))
    (problem,) = load_speakers(tmp_path / "latin.csv", format="csv").problems
    assert problem.line == 2 and "not UTF-8" in problem.message


def test_a_space_that_samples_nothing_runs_each_combination_once_or_repeats_with_its_own_seeds():
    from dist_spk.tune.space import Param, load_space, samples_anything, space_path, with_repeats

    study = load_space(space_path("seed_segmentation_variants", "seg"), "seg")
    assert not samples_anything(study)  # 11 named variants: nothing drawn at random, so num_samples must not apply
    assert with_repeats(study, repeats=1, seed=0) == study
    repeated = with_repeats(study, repeats=3, seed=7)
    assert repeated[-1] == Param("trainer.seed", "grid", ((7, 8, 9),))  # a column of summary.csv, one seed each
    sampled = [Param("optim.lr", "loguniform", (1e-4, 1e-2))]
    assert samples_anything(sampled) and with_repeats(sampled, repeats=3, seed=0) == sampled


def test_joined_to_a_cluster_a_preset_must_be_named(tmp_path):
    import os
    import subprocess

    from tests.conftest import CLI

    env = {**os.environ, "RAY_ADDRESS": "127.0.0.1:1"}  # as ray job submit sets it; nothing listens there
    for command in (["train", "spk", "--data", str(tmp_path), "--out", str(tmp_path / "run")],
                    ["tune", "seg", "--data", str(tmp_path), "--out", str(tmp_path / "exp")]):
        result = subprocess.run([*CLI, *command], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and "without --preset" in result.stderr and "local, cluster" in result.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "exp").exists()
