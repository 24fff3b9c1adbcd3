"""Speaker-training data: crops, speed perturbation, balanced sampling, augmentation."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from dist_spk.config.tasks import SpkDataConfig
from dist_spk.data.speakers import load_speakers
from dist_spk.errors import ConfigError
from dist_spk.speaker.data import (
    BalancedSampler,
    EvalUtterances,
    TrainCrops,
    WaveAugment,
    fit_length,
    generated_rir,
    pad_batch,
)
from tests.conftest import write_tone


@pytest.fixture
def voxceleb(tmp_path):
    root = tmp_path / "vox"
    for s, speaker in enumerate(["a", "b", "c"]):
        for utt, seconds in enumerate([0.7, 2.5, 3.0][: 3 - s]):  # unbalanced: 3, 2, 1 utterances
            write_tone(root / speaker / "s1" / f"{utt}.wav", seconds, seed=s)
    write_tone(tmp_path / "noise" / "n.wav", 2.0, seed=9)
    return root


def test_fit_length_tiles_short_audio():
    assert fit_length(np.array([1.0, 2.0], dtype=np.float32), 5).tolist() == [1, 2, 1, 2, 1]
    assert len(fit_length(np.ones(10, dtype=np.float32), 4)) == 4


def test_crops_have_the_crop_length_and_speed_perturbation_adds_speakers(voxceleb):
    manifest = load_speakers(voxceleb)
    crops = TrainCrops(manifest.utterances, manifest.speakers(), SpkDataConfig(crop_seconds=1.0,
                                                                                speed_perturb=[0.9, 1.1]))
    assert len(crops) == 3 * 6 and crops.num_classes == 9
    wave, label = crops[0]
    assert wave.shape == (16000,) and label == crops.index[manifest.utterances[0].speaker]
    fast_wave, fast_label = crops[2 * 6]  # the same utterance at the third speed: a new speaker
    assert fast_label == label + 2 * 3 and fast_wave.shape == (16000,)
    assert sorted(set(crops.labels())) == list(range(9))


def test_balanced_sampler_draws_classes_uniformly():
    labels = [0] * 90 + [1] * 9 + [2]
    sampler = BalancedSampler(labels, seed=0)
    drawn = Counter(labels[i] for _ in range(30) for i in sampler)
    assert len(sampler) == 100
    assert all(abs(drawn[c] / 3000 - 1 / 3) < 0.03 for c in (0, 1, 2))
    assert list(BalancedSampler(labels, seed=0)) == list(BalancedSampler(labels, seed=0))


def test_noise_and_reverb_change_the_audio(voxceleb):
    config = SpkDataConfig(noise_dir=str(voxceleb.parent / "noise"), noise_probability=1.0, reverb_probability=1.0)
    augment = WaveAugment(config)
    audio = np.sin(np.linspace(0, 400, 16000)).astype(np.float32)
    out = augment(audio.copy(), np.random.default_rng(0))
    assert out.shape == audio.shape and not np.allclose(out, audio)
    rir = generated_rir(np.random.default_rng(0), rt60=0.5)
    assert rir[0] == rir.max() and np.sum(rir**2) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ConfigError, match="data.noise_dir: no audio files"):
        WaveAugment(SpkDataConfig(noise_dir=str(voxceleb / "missing"), noise_probability=0.5))


def test_without_a_noise_folder_generated_noise_is_mixed_at_5_to_20_db():
    augment = WaveAugment(SpkDataConfig(noise_probability=1.0))  # the local preset's default: no folder needed
    audio = np.sin(np.linspace(0, 400, 16000)).astype(np.float32)
    for seed in range(5):
        noise = augment(audio.copy(), np.random.default_rng(seed)) - audio
        snr_db = 10 * np.log10(np.mean(audio**2) / np.mean(noise**2))
        assert 5 - 1e-3 <= snr_db <= 20 + 1e-3


def test_crops_per_epoch_sets_the_balanced_sampler_draws():
    labels = [0] * 10 + [1] * 2
    sampler = BalancedSampler(labels, seed=0, size=500)
    drawn = list(sampler)
    assert len(sampler) == len(drawn) == 500 and abs(sum(labels[i] for i in drawn) / 500 - 0.5) < 0.1


def test_eval_batches_are_padded_with_lengths(voxceleb):
    manifest = load_speakers(voxceleb)
    dataset = EvalUtterances(manifest.utterances)
    indices, waves, lengths = pad_batch([dataset[i] for i in range(3)])
    assert indices.tolist() == [0, 1, 2] and waves.shape == (3, int(lengths.max()))
    assert torch.all(waves[lengths.argmin(), int(lengths.min()):] == 0)
