"""Storage locations (runs/storage.py) and checkpoint pointers, on a local disk and on an S3 server on loopback."""

from __future__ import annotations

import json
import os

import pytest

from dist_spk.errors import DistSpkError
from dist_spk.runs import storage
from dist_spk.runs.run_dir import (
    JsonlTail,
    point_checkpoint,
    prepare_run_dir,
    read_pointer,
    resolve_checkpoint,
)
from tests.s3_server import BUCKET, keys, s3_server


@pytest.fixture
def s3(tmp_path, monkeypatch):
    with s3_server() as env:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("DIST_SPK_SCRATCH", str(tmp_path / "scratch"))
        yield env


def test_locations_are_paths_or_uris():
    assert storage.is_remote("s3://bucket/exp") and storage.is_remote("gs://b/x")
    assert not storage.is_remote("/tmp/exp") and not storage.is_remote("file:///tmp/exp")
    assert not storage.is_remote("relative/exp")
    assert storage.join("s3://b/exp", "trials", "t1") == "s3://b/exp/trials/t1"
    assert storage.join("s3://b/exp/trials/t1/checkpoints", "../../../train/x") == "s3://b/exp/train/x"
    assert storage.join("s3://b/exp?endpoint_override=h:9000", "a") == "s3://b/exp/a?endpoint_override=h:9000"
    assert storage.normalize("s3://b/exp/") == "s3://b/exp"
    assert storage.normalize("file:///tmp/x") == "/tmp/x"


def test_upload_and_download_skip_heavy_parts_and_mirrors_keep_the_name(s3, tmp_path):
    local = tmp_path / "exp"
    (local / "trials" / "t1" / "checkpoints").mkdir(parents=True)
    (local / "trials" / "t1" / "metrics.jsonl").write_text('{"epoch": 0}\n')
    (local / "trials" / "t1" / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    (local / "config.yaml").write_text("a: 1\n")
    exp = f"s3://{BUCKET}/exp"
    assert storage.upload(local, exp) == 3
    assert storage.download(exp, tmp_path / "back", skip=storage.HEAVY) == 2
    assert (tmp_path / "back" / "trials" / "t1" / "metrics.jsonl").read_text() == '{"epoch": 0}\n'
    assert not (tmp_path / "back" / "trials" / "t1" / "checkpoints").exists()
    mirror = storage.local_mirror(exp)
    assert mirror.name == "exp" and str(mirror).startswith(str(tmp_path / "scratch"))
    assert storage.relocate(str(mirror / "data" / "train.jsonl"), mirror, exp) == f"{exp}/data/train.jsonl"
    assert storage.relocate("/elsewhere/x", mirror, exp) == "/elsewhere/x"
    assert storage.list_names(f"{exp}/trials") == ["t1"] and storage.list_names(f"{exp}/nothing") == []


def test_an_unwritable_location_is_one_clear_error(s3):
    with pytest.raises(DistSpkError, match="s3://no-such-bucket/exp: cannot write here"):
        storage.check_writable("s3://no-such-bucket/exp")
    storage.check_writable(f"s3://{BUCKET}/exp")
    assert not [key for key in keys(s3, "exp/") if "probe" in key]  # the probe is gone


def test_a_tail_reads_only_new_complete_rows_from_a_store(s3):
    location = f"s3://{BUCKET}/run/steps.jsonl"
    tail = JsonlTail(location)
    assert tail.rows() == []  # not written yet
    storage.write_text(location, '{"step": 1}\n{"step": 2}\n{"st')
    assert tail.rows() == [{"step": 1}, {"step": 2}]
    storage.write_text(location, '{"step": 1}\n{"step": 2}\n{"step": 3}\n')  # re-uploaded, grown
    assert tail.rows() == [{"step": 3}]
    assert JsonlTail(location, from_end=True).rows() == []


def test_pointers_name_the_one_stored_checkpoint_locally_and_on_a_store(s3, tmp_path):
    # a local run: last/best are relative links to the file Ray stored, and follow a moved experiment
    exp = tmp_path / "exp"
    stored = exp / "train" / "train-t1-0" / "checkpoint_000"
    stored.mkdir(parents=True)
    (stored / "checkpoint.ckpt").write_bytes(b"epoch 3")
    run = exp / "trials" / "t1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("a: 1\n")
    point_checkpoint(str(run), "best", str(stored / "checkpoint.ckpt"), epoch=3, eer=0.1)
    assert os.readlink(run / "checkpoints" / "best.ckpt") == "../../../train/train-t1-0/checkpoint_000/checkpoint.ckpt"
    assert resolve_checkpoint(run) == (run / "checkpoints" / "best.ckpt", run)
    moved = tmp_path / "moved"
    exp.rename(moved)
    assert (moved / "trials" / "t1" / "checkpoints" / "best.ckpt").read_bytes() == b"epoch 3"
    assert read_pointer(str(moved / "trials" / "t1"), "best")["eer"] == 0.1

    # on a store: only the pointer; a command fetches the checkpoint (and the run's config) it names
    remote = f"s3://{BUCKET}/exp/trials/t1"
    storage.write_bytes(f"s3://{BUCKET}/exp/train/train-t1-0/checkpoint_000/checkpoint.ckpt", b"remote epoch")
    storage.write_text(f"{remote}/config.yaml", "a: 2\n")
    point_checkpoint(remote, "last", f"{BUCKET}/exp/train/train-t1-0/checkpoint_000/checkpoint.ckpt", epoch=4)
    point_checkpoint(remote, "best", f"{BUCKET}/exp/train/train-t1-0/checkpoint_000/checkpoint.ckpt", epoch=4)
    assert json.loads(storage.read_text(f"{remote}/checkpoints/last.json"))["checkpoint"] == \
        "../../../train/train-t1-0/checkpoint_000/checkpoint.ckpt"
    for location in (remote, f"{remote}/checkpoints/best.ckpt"):
        checkpoint, config_dir = resolve_checkpoint(location)
        assert checkpoint.read_bytes() == b"remote epoch" and (config_dir / "config.yaml").read_text() == "a: 2\n"
    # --resume of a run on a store continues from what last.json names
    assert prepare_run_dir(remote, resume=True) == f"s3://{BUCKET}/exp/train/train-t1-0/checkpoint_000/checkpoint.ckpt"
    with pytest.raises(DistSpkError, match="already holds a run"):
        prepare_run_dir(remote, resume=False)
    with pytest.raises(DistSpkError, match="neither checkpoints/best.json"):
        resolve_checkpoint(f"s3://{BUCKET}/exp/trials/none")


def test_doctor_checks_an_object_store_from_the_driver_and_every_node(s3):
    from dist_spk.launch.doctor import FAIL, OK, check_experiment_dir, node_report, rows_for_node

    row, probe = check_experiment_dir(f"s3://{BUCKET}/exp")
    assert row.status == OK and probe.startswith(f"s3://{BUCKET}/exp/.doctor-probe-")
    assert node_report(probe)["probe_seen"]  # what each node type runs: it reads the probe with its credentials
    row, none = check_experiment_dir("s3://no-such-bucket/exp")
    assert row.status == FAIL and none is None and "s3://no-such-bucket/exp: cannot write there" in row.detail
    report = {**node_report(probe), "probe_seen": False}
    (storage_row,) = [r for r in rows_for_node("gpu", report, offers_gpu=False, probe=probe)
                      if r.check == "shared storage"]
    assert storage_row.status == FAIL and "credentials for the store" in storage_row.detail


def test_a_uri_can_carry_its_endpoint_instead_of_the_environment(s3, monkeypatch):
    endpoint = s3["AWS_ENDPOINT_URL"].removeprefix("http://")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    location = f"s3://{BUCKET}/exp?endpoint_override={endpoint}&scheme=http"
    storage.check_writable(location)
    storage.write_text(storage.join(location, "trials", "t1", "metrics.jsonl"), '{"epoch": 0}\n')
    assert storage.join(location, "trials") == f"s3://{BUCKET}/exp/trials?endpoint_override={endpoint}&scheme=http"
    assert storage.list_names(storage.join(location, "trials")) == ["t1"]
    assert JsonlTail(storage.join(location, "trials", "t1", "metrics.jsonl")).rows() == [{"epoch": 0}]
    assert storage.local_mirror(location).name == "exp"
