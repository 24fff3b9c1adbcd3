"""Speaker-training data: crops, speed perturbation, balanced sampling, augmentation."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from dist_spk.config.tasks import SpkDataConfig
from dist_spk.data.speakers import load_speakers
from dist_spk.errors import ConfigError
from dist_spk.speaker.augment import CropAugment, colored_noises, generated_rirs
from dist_spk.speaker.data import BalancedSampler, EvalUtterances, TrainCrops, fit_length, pad_batch
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


def sines(rows: int) -> torch.Tensor:
    return torch.stack([torch.sin(torch.linspace(0, 400 + 50 * row, 16000)) for row in range(rows)])


def test_noise_and_reverb_change_every_crop_of_the_batch(voxceleb):
    config = SpkDataConfig(noise_dir=str(voxceleb.parent / "noise"), noise_probability=1.0, reverb_probability=1.0)
    audio = sines(4)
    out = CropAugment(config)(audio, np.random.default_rng(0))
    assert out.shape == audio.shape and out.dtype == torch.float32
    assert all(not torch.allclose(out[row], audio[row]) for row in range(4))
    rir = generated_rirs(torch.tensor([0.3, 0.5]), torch.Generator().manual_seed(0))
    assert (rir[:, 0] == rir.abs().max(dim=1).values).all()
    assert rir.square().sum(dim=1) == pytest.approx(torch.ones(2), rel=1e-5)
    assert (rir[0, int(0.3 * 16000) + 1:] == 0).all() and (rir[1, int(0.3 * 16000) + 1:] != 0).any()  # own rt60
    with pytest.raises(ConfigError, match="data.noise_dir: no audio files"):
        CropAugment(SpkDataConfig(noise_dir=str(voxceleb / "missing"), noise_probability=0.5))


def test_without_a_noise_folder_generated_noise_is_mixed_at_5_to_20_db():
    audio = sines(16)
    noise = CropAugment(SpkDataConfig(noise_probability=1.0))(audio) - audio  # the presets' case: no folder
    snr_db = 10 * torch.log10(audio.square().mean(dim=1) / noise.square().mean(dim=1))
    assert ((snr_db >= 5 - 1e-3) & (snr_db <= 20 + 1e-3)).all() and snr_db.std() > 1  # drawn per crop


def test_coloured_noise_power_falls_with_frequency_as_its_colour_says():
    noise = colored_noises(torch.tensor([0, 1, 2]), 64000, torch.Generator().manual_seed(0))
    power = torch.fft.rfft(noise).abs().square()
    low, high = power[:, 100:1000].mean(dim=1), power[:, 10000:20000].mean(dim=1)  # 25-250 Hz vs 2.5-5 kHz
    ratio = (low / high).tolist()
    # white flat; pink 1/f: the bands' mean 1/f ratio is 37; brown 1/f^2: 2,000
    assert 0.8 < ratio[0] < 1.25 and 25 < ratio[1] < 55 and 1000 < ratio[2] < 4000
    assert noise.square().mean(dim=1) == pytest.approx(torch.ones(3), rel=1e-4)


def test_each_batch_draws_its_own_augmentation_and_a_seed_repeats_it():
    config = SpkDataConfig(noise_probability=0.5, reverb_probability=0.5)
    audio = sines(8)
    first, again = CropAugment(config, seed=1), CropAugment(config, seed=1)
    one, two = first(audio), first(audio)
    assert torch.equal(one, again(audio)) and not torch.equal(one, two)  # the next call draws anew
    touched = [not torch.equal(one[row], audio[row]) for row in range(8)]
    assert 0 < sum(touched) < 8  # each crop decided on its own
    rng = np.random.default_rng(5)  # a loader passes its batch's generator
    assert torch.equal(first(audio, np.random.default_rng(5)), CropAugment(config, seed=99)(audio, rng))


def test_the_loader_augments_only_when_the_device_does_not(voxceleb):
    manifest = load_speakers(voxceleb)
    plain = SpkDataConfig(crop_seconds=1.0)
    noisy = {"noise_probability": 1.0, "reverb_probability": 1.0}
    batches = {name: TrainCrops(manifest.utterances, manifest.speakers(), config, seed=3).__getitems__([0, 1, 2])[0]
               for name, config in (("plain", plain), ("device", SpkDataConfig(crop_seconds=1.0, **noisy)),
                                    ("loader", SpkDataConfig(crop_seconds=1.0, augment_on_device=False, **noisy)))}
    assert torch.equal(batches["device"], batches["plain"])  # left to the training step
    assert not torch.allclose(batches["loader"], batches["plain"])


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
