"""The training cache (data/training_cache.py): the same chunks, labels and crops as decoding each time; stale and
damaged caches refused; training with it gives the same run."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from pyannote.core import Segment

from dist_spk.data.training_cache import AUDIO, dataset_sources, open_cache, prepare, to_float
from dist_spk.errors import DataError
from tests.conftest import local_config, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def diar_cache(small_corpus, tmp_path_factory):
    sources = dataset_sources(small_corpus / "diar", task="seg")
    return prepare(sources, tmp_path_factory.mktemp("cache") / "diar", progress=False), sources


def test_segmentation_chunks_and_labels_equal_pyannotes(small_corpus, diar_cache, tmp_path):
    from pyannote.audio.core.io import Audio

    from dist_spk.data.protocol import load_protocol
    from dist_spk.launch.run import prepare_segmentation
    from dist_spk.segmentation.cached_audio import CachedAudio
    from dist_spk.segmentation.model import build_model
    from dist_spk.train.seg_loop import build_task

    cache = open_cache(diar_cache[0], sources=diar_cache[1])
    cached, decoded = CachedAudio(cache), Audio(sample_rate=16000, mono="downmix")
    rng = np.random.default_rng(0)
    for file in list(load_protocol(small_corpus / "diar").train())[:4]:
        duration = len(cache.waveform(file["audio"])) / 16000
        for length in (10.0, 5.0, 3.37, 0.7777):  # lengths whose sample counts round differently
            start = float(rng.uniform(0, duration - length))
            chunk = Segment(start, start + length)
            samples = cached.crop(file, chunk)[0]
            assert samples.dtype == torch.int16  # made float where the batch is used
            assert torch.equal(to_float(samples), decoded.crop(file, chunk)[0]), (file["uri"], chunk)

    # whole chunks as the training loader prepares them (pyannote's prepare_chunk): waveform and frame labels
    config = local_config("seg", small_corpus / "diar", **{"model.init": "random"})
    task = build_task(config, load_protocol(config.data.root),
                      cache=prepare_segmentation(config, tmp_path)["cache_file"])
    model = build_model(config.model, task)
    model.setup()
    draws = [(int(file_id), float(rng.uniform(0, 20))) for file_id in rng.integers(0, 12, size=8)]
    plain = [task.prepare_chunk(file_id, start, config.data.duration) for file_id, start in draws]
    model.audio = CachedAudio(cache)
    for (file_id, start), expected in zip(draws, plain, strict=True):
        chunk = task.prepare_chunk(file_id, start, config.data.duration)
        assert torch.equal(to_float(chunk["X"]), expected["X"])
        assert np.array_equal(chunk["y"].data, expected["y"].data) and chunk["y"].labels == expected["y"].labels
    # and collated, as the training step gets them (augmentation off: no copy in the loader)
    cached_batch = task.collate_fn([task.prepare_chunk(f, s, config.data.duration) for f, s in draws])
    assert torch.equal(to_float(cached_batch["X"]), torch.stack([chunk["X"] for chunk in plain]))


def test_speaker_crops_equal_the_per_file_decode(small_corpus, tmp_path):
    from dist_spk.data.speakers import load_speakers
    from dist_spk.speaker.data import EvalUtterances, TrainCrops

    utterances = load_speakers(small_corpus / "spk").utterances[:40]
    cache = open_cache(prepare([u.path for u in utterances], tmp_path / "spk", progress=False))
    config = local_config("spk", small_corpus / "spk").data
    speakers = sorted({u.speaker for u in utterances})
    plain, cached = TrainCrops(utterances, speakers, config, seed=3), TrainCrops(utterances, speakers, config, seed=3,
                                                                                   cache=cache)
    for item in range(len(plain)):
        (a, label_a), (b, label_b) = plain[item], cached[item]
        assert torch.equal(a, b) and label_a == label_b
    for batch in (list(range(16)), list(range(len(plain)))[::-3]):  # a batch is gathered from the cache at once
        (waves_a, labels_a), (waves_b, labels_b) = plain.__getitems__(batch), cached.__getitems__(batch)
        assert waves_b.dtype == torch.int16  # gathered from the cache; made float on the training device
        assert waves_b.shape == (len(batch), plain.crop) and torch.equal(waves_a, to_float(waves_b))
        assert torch.equal(labels_a, labels_b) and labels_a.tolist() == [plain.label(i) for i in batch]
    # speed perturbation (the cluster preset's 0.9 and 1.1): gathered per speed and resampled a group at a time
    config.speed_perturb = [0.9, 1.1]
    plain, cached = TrainCrops(utterances, speakers, config, seed=3), TrainCrops(utterances, speakers, config, seed=3,
                                                                                   cache=cache)
    batch = list(range(len(plain)))[::-2]
    assert {plain.speeds[item // len(utterances)] for item in batch} == {0.9, 1.0, 1.1}
    (waves_a, labels_a), (waves_b, labels_b) = plain.__getitems__(batch), cached.__getitems__(batch)
    assert waves_b.shape == (len(batch), plain.crop) and torch.equal(waves_a, waves_b)
    assert torch.equal(labels_a, labels_b)
    for (i, a), (j, b) in zip(EvalUtterances(utterances), EvalUtterances(utterances, cache=cache), strict=True):
        assert i == j and torch.equal(a, b)


def test_stale_damaged_or_half_written_caches_are_one_clear_error(small_corpus, tmp_path):
    sources = dataset_sources(small_corpus / "spk", task="spk")[:5]
    copies = []
    for source in sources:  # a dataset of our own, to change one of its files
        copy = tmp_path / "data" / source.name
        copy.parent.mkdir(exist_ok=True)
        copy.write_bytes(source.read_bytes())
        copies.append(copy)
    cache = prepare(copies, tmp_path / "cache", progress=False)
    open_cache(cache, sources=copies)
    os.utime(copies[2], ns=(1, 1))
    with pytest.raises(DataError, match=f"stale: {copies[2]} changed"):
        open_cache(cache, sources=copies)
    with pytest.raises(DataError, match="not in the cache"):
        open_cache(cache, sources=[*copies[:2], sources[0]])
    audio = cache / AUDIO
    audio.write_bytes(audio.read_bytes()[:1000])
    with pytest.raises(DataError, match=f"{audio}: 1000 bytes, the manifest says"):
        open_cache(cache)
    (tmp_path / "half").mkdir()  # what a crash before the rename leaves is never opened as a cache
    (tmp_path / "half" / AUDIO).write_bytes(b"\0" * 64)
    with pytest.raises(DataError, match="not a training cache"):
        open_cache(tmp_path / "half")
    # nor overwritten when a run names it: a folder that is not a cache is never deleted
    result = run_cli("train", "spk", "--data", small_corpus / "spk", "--out", tmp_path / "run", "--workers", "0",
                     "--set", f"data.cache={tmp_path / 'half'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{tmp_path / 'half'}: exists and is not a training cache" in result.stderr
    assert (tmp_path / "half" / AUDIO).read_bytes() == b"\0" * 64


def test_training_with_the_cache_builds_it_and_trains_the_same_model(small_corpus, tmp_path):
    from dist_spk.launch.run import run_training

    cache = tmp_path / "cache"
    runs = {}
    for name, sets in (("decoded", {}), ("cached", {"data.cache": cache})):
        config = local_config("spk", small_corpus / "spk", **{"trainer.epochs": 2, **sets})
        run_training("spk", config, out=tmp_path / name)
        runs[name] = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    assert (cache / "manifest.json").is_file()  # built by the first run that named it
    for decoded, cached in zip(runs["decoded"], runs["cached"], strict=True):
        assert cached["eer"] == decoded["eer"] and cached["loss"] == pytest.approx(decoded["loss"], rel=1e-6)


def test_data_prepare_command_writes_a_cache_for_either_kind_of_dataset(small_corpus, tmp_path):
    for kind, files in (("diar", 18), ("spk", len({u for u in dataset_sources(small_corpus / "spk", task="spk")}))):
        result = run_cli("data", "prepare", small_corpus / kind, "--out", tmp_path / kind)
        assert result.returncode == 0, result.stderr[-2000:]
        assert f"wrote {tmp_path / kind}: {files} files" in result.stdout and "data.cache=" in result.stdout
        assert len(json.loads((tmp_path / kind / "manifest.json").read_text())["files"]) == files
