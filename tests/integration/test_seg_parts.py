"""Augmentation and the shared metadata cache."""

from __future__ import annotations

import os

import pytest
import torch

from dist_spk.config.tasks import AugmentConfig, SegDataConfig
from dist_spk.data.protocol import load_protocol
from dist_spk.errors import ConfigError
from dist_spk.segmentation.augment import build_augmentation
from dist_spk.segmentation.cache import cache_path, prepare_cache


def test_augmentation_off_by_default_and_on_with_every_transform(tiny_corpus):
    assert build_augmentation(AugmentConfig()) is None
    augment = build_augmentation(AugmentConfig(probability=1.0, background_noise_dir=str(tiny_corpus / "noise")))
    names = [type(t).__name__ for t in augment.transforms]
    assert names == ["Gain", "AddColoredNoise", "BandPassFilter", "AddBackgroundNoise"]
    torch.manual_seed(0)
    samples = torch.randn(3, 1, 16000) * 0.1
    out = augment(samples=samples.clone(), sample_rate=16000).samples
    assert out.shape == samples.shape and not torch.allclose(out, samples)


def test_augmentation_noise_folder_errors(tmp_path):
    with pytest.raises(ConfigError, match="background_noise_dir: .* is not a folder"):
        build_augmentation(AugmentConfig(probability=0.5, background_noise_dir=str(tmp_path / "none")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no audio files"):
        build_augmentation(AugmentConfig(probability=0.5, background_noise_dir=str(tmp_path / "empty")))


def test_cache_is_built_once_and_rebuilt_when_the_data_changes(seed_dataset, tmp_path):
    from dist_spk.config.tasks import SegLossConfig
    from dist_spk.segmentation.task import SegmentationTask

    config = SegDataConfig(root=str(seed_dataset), duration=5.0)
    protocol = load_protocol(seed_dataset)

    def task():
        return SegmentationTask(protocol, loss=SegLossConfig(), duration=5.0, max_speakers_per_chunk=2,
                                batch_size=2, num_workers=0)

    path = cache_path(config, tmp_path, protocol.name)
    assert prepare_cache(task(), path) == path and path.stat().st_size > 0
    stamp = path.stat().st_mtime_ns
    prepare_cache(task(), path)
    assert path.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".partial")]
    rttm = seed_dataset / "train/rttm/a1.rttm"
    rttm.write_text(rttm.read_text().replace("3.500", "3.000"))
    assert cache_path(config, tmp_path, protocol.name) != path
    assert cache_path(SegDataConfig(root=str(seed_dataset), duration=4.0), tmp_path, protocol.name) != path


@pytest.mark.parametrize("on_device", [True, False])
def test_augmentation_runs_on_the_training_batch_or_in_the_loader(tiny_corpus, tmp_path, on_device):
    from types import SimpleNamespace

    from dist_spk.train.callbacks import AugmentOnDevice
    from dist_spk.train.seg_loop import build_task
    from tests.conftest import local_config

    config = local_config("seg", tiny_corpus / "diar", **{"augment.probability": 1.0, "augment.on_device": on_device})
    task = build_task(config, load_protocol(config.data.root), cache=tmp_path / "cache")
    assert (type(task.augmentation).__name__ == "Compose") is not on_device  # pyannote's Identity when on the device
    torch.manual_seed(0)
    samples = torch.randn(4, 1, 16000) * 0.1
    batch = {"X": samples.clone(), "y": torch.zeros(4, 10, 3)}
    AugmentOnDevice(build_augmentation(config.augment)).on_train_batch_start(
        None, SimpleNamespace(hparams=SimpleNamespace(sample_rate=16000)), batch, 0)
    assert batch["X"].shape == samples.shape and not torch.allclose(batch["X"], samples)
    assert torch.equal(batch["y"], torch.zeros(4, 10, 3))  # targets untouched
