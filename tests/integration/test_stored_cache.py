"""A training cache on an object store (moto's S3 server on loopback): `data prepare --out s3://...` publishes it,
each node fetches it once, a run trains on it; incomplete and stale stored caches are refused, and an incomplete
one is prepared again by the next run."""

from __future__ import annotations

import json
import subprocess

import pytest

from dist_spk.data.stored_cache import check_stored_cache, fetch_cache, stored_cache_exists
from dist_spk.data.training_cache import AUDIO, MANIFEST, dataset_sources, prepare
from dist_spk.errors import DataError
from dist_spk.launch.run import run_training
from dist_spk.runs.run_dir import read_metrics
from tests.conftest import CLI, local_config
from tests.s3_server import BUCKET, _client, keys, read, s3_server, with_env

pytestmark = pytest.mark.slow


def stored(env: dict) -> list[str]:
    return [key for key in keys(env, "caches/spk/") if not key.endswith("/")]  # not pyarrow's folder markers


def test_a_stored_cache_is_published_fetched_once_per_node_and_trained_on(small_corpus, tmp_path, monkeypatch):
    data, uri = small_corpus / "spk", f"s3://{BUCKET}/caches/spk"
    sources = dataset_sources(data, task="spk")
    with s3_server() as env:
        driver = {**env, "DIST_SPK_SCRATCH": str(tmp_path / "driver-node")}
        result = subprocess.run([*CLI, "data", "prepare", str(data), "--out", uri], env=with_env(driver),
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert f"wrote {uri}: {len(set(sources))} files" in result.stdout
        assert stored(env) == [f"caches/spk/{AUDIO}", f"caches/spk/{MANIFEST}"]
        local = prepare(sources, tmp_path / "local", progress=False)  # byte for byte a local preparation
        assert read(env, f"caches/spk/{AUDIO}") == (local / AUDIO).read_bytes()
        assert json.loads(read(env, f"caches/spk/{MANIFEST}")) == json.loads((local / MANIFEST).read_text())

        # another node (its own scratch) fetches it once; its workers then read that copy
        for name, value in {**env, "DIST_SPK_SCRATCH": str(tmp_path / "worker-node")}.items():
            monkeypatch.setenv(name, value)
        copy = fetch_cache(uri)
        assert copy.is_relative_to(tmp_path / "worker-node")
        assert (copy / AUDIO).read_bytes() == (local / AUDIO).read_bytes()
        fetched = (copy / AUDIO).stat().st_mtime_ns
        assert fetch_cache(uri) == copy and (copy / AUDIO).stat().st_mtime_ns == fetched  # not downloaded again

        # a run names the stored cache: checked against the dataset, not rebuilt, trained on from the node's copy
        config = local_config("spk", data, **{"trainer.epochs": 1, "data.cache": uri})
        run_training("spk", config, out=tmp_path / "run")
        assert len(read_metrics(tmp_path / "run")) == 1 and (copy / AUDIO).stat().st_mtime_ns == fetched
        assert stored(env) == [f"caches/spk/{AUDIO}", f"caches/spk/{MANIFEST}"]

        # a changed dataset file makes it stale; an upload cut short (no manifest) is not a cache
        changed = tmp_path / "changed.wav"
        changed.write_bytes(sources[0].read_bytes() + b"\0\0")
        with pytest.raises(DataError, match=f"{uri}: stale: {changed} is in the dataset but not in the cache"):
            check_stored_cache(uri, sources=[changed])
        _client(env).delete_object(Bucket=BUCKET, Key=f"caches/spk/{MANIFEST}")
        assert not stored_cache_exists(uri)
        with pytest.raises(DataError, match=f"{uri}: not a training cache"):
            check_stored_cache(uri)
        run_training("spk", config, out=tmp_path / "again")  # so a run prepares and publishes it again
        assert stored_cache_exists(uri) and read(env, f"caches/spk/{AUDIO}") == (local / AUDIO).read_bytes()
