"""The feed: training examples per second of one loader process, decoding each time vs the training cache.

Segmentation: pyannote's training loader at the cluster preset (10 s chunks, batch 64, powerset targets, collation),
the same task and seed:

- *pyannote's way*: pyannote's ``Audio`` decodes every chunk and the augmentation (p 0.5) runs in the loader's collate
  function; *ours*: chunks read from the cache (:mod:`dist_spk.segmentation.cached_audio`), the augmentation moved to
  the training batch on the device (``augment.on_device``, ``dist_spk.train.callbacks.AugmentOnDevice``), so the loader
  only slices and frames. ``seg_loader_speedup_vs_pyannote`` is this ratio: the cluster preset as each runs it.
- the same with augmentation off in both (the feed alone), and what the on-device augmentation costs per batch when
  the "device" is this CPU (a GPU does it much faster: not measured here).

Speaker encoder: 2 s crops of ``TrainCrops`` in batches of the cluster preset's size, as the DataLoader asks for them
(``__getitems__``: a collated batch), decoded per crop vs gathered from the cache: augmentation off
(``spk_loader_speedup_vs_per_crop_decode``), and with the presets' noise (p 0.5, generated) and reverb (p 0.3,
generated rooms), augmented in the loader (``data.augment_on_device=false``) vs left to the training step (the
default), plus what that augmentation costs per crop when the "device" is this CPU; and with the cluster preset's
speed perturbation (0.9, 1.0, 1.1: two crops in three resampled, a group of one speed at a time).

The model's own chunks/s (PyanNet forward + backward, batch 64, both cores) says how far a loader process is from
keeping a trainer busy; the loader processes one GPU needs are estimated from an assumed GPU rate
(``GPU_CHUNKS_PER_S``).
Loaders: one process, one thread, the small demo corpus; runs interleaved A B B A, best of each kept.

    python -m bench.data_feed
"""

from __future__ import annotations

import itertools
import math
import time

import torch

from bench.common import WORK, corpus, record

SEG_BATCHES = 6
SPK_BATCHES = 40
MODEL_STEPS = 3
# Assumed, not measured (no GPU here): one current data-centre GPU trains PyanNet (1.5 M parameters, 10 s chunks)
# at thousands of chunks/s (issue 18's premise); 3,000 is taken. Put your GPU's measured rate here.
GPU_CHUNKS_PER_S = 3000


def seg_task(data, *, probability: float, on_device: bool, cached_audio=None):
    from dist_spk.config import load_config
    from dist_spk.data.protocol import load_protocol
    from dist_spk.launch.run import prepare_segmentation
    from dist_spk.segmentation.model import build_model
    from dist_spk.train.seg_loop import build_task

    config = load_config("seg", preset_name="cluster", overrides=[
        f"data.root={data}", "model.init=random", "data.loader_workers=0", f"augment.probability={probability}",
        f"augment.on_device={str(on_device).lower()}"])
    task = build_task(config, load_protocol(config.data.root),
                      cache=prepare_segmentation(config, WORK / "data-feed")["cache_file"])
    model = build_model(config.model, task)
    model.setup()
    if cached_audio is not None:
        model.audio = cached_audio
    return task, model, config


def seg_rate(task, batches: int) -> float:
    loader = iter(task.train_dataloader())
    next(loader)  # warm-up
    started = time.perf_counter()
    for _ in range(batches):
        next(loader)
    return batches * task.batch_size / (time.perf_counter() - started)


def seg_rates(data, cache, probability: float) -> tuple[float, float]:
    """(pyannote's way, ours) chunks/s of one loader process, augmentation at ``probability``."""
    from dist_spk.segmentation.cached_audio import CachedAudio

    tasks = {"pyannote": seg_task(data, probability=probability, on_device=False)[0],
             "ours": seg_task(data, probability=probability, on_device=True, cached_audio=CachedAudio(cache))[0]}
    rates = {"pyannote": [], "ours": []}
    for name in ("pyannote", "ours", "ours", "pyannote"):
        rates[name].append(seg_rate(tasks[name], SEG_BATCHES))
    return max(rates["pyannote"]), max(rates["ours"])


def device_augmentation_rate(data) -> float:
    """Chunks/s of the on-device augmentation (p 0.5, every transform) with this CPU as the device."""
    from dist_spk.segmentation.augment import build_augmentation
    from dist_spk.train.callbacks import AugmentOnDevice

    _, model, config = seg_task(data, probability=0.5, on_device=True)
    augment = AugmentOnDevice(build_augmentation(config.augment))
    batch_size, samples = config.data.batch_size, int(config.data.duration * 16000)
    batch = {"X": torch.randn(batch_size, 1, samples) * 0.1}
    augment.on_train_batch_start(None, model, batch, 0)  # warm-up
    started = time.perf_counter()
    for _ in range(3):
        augment.on_train_batch_start(None, model, {"X": torch.randn(batch_size, 1, samples) * 0.1}, 0)
    return 3 * batch_size / (time.perf_counter() - started)


def model_rate(data) -> float:
    """PyanNet's training chunks/s on this CPU (forward, loss, backward, step; both cores)."""
    task, model, config = seg_task(data, probability=0.0, on_device=True)
    batch = next(iter(task.train_dataloader()))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    torch.set_num_threads(2)
    try:
        for step in range(MODEL_STEPS + 1):
            if step == 1:
                started = time.perf_counter()
            optimizer.zero_grad()
            out = model(batch["X"])
            torch.nn.functional.binary_cross_entropy(out.exp().clamp(0, 1), torch.zeros_like(out)).backward()
            optimizer.step()
        return MODEL_STEPS * config.data.batch_size / (time.perf_counter() - started)
    finally:
        torch.set_num_threads(1)


def spk_rates(data, cache, *, augmented: bool, speeds: str = "[]") -> tuple[float, float]:
    """Crops/s: decoded per crop (augmented in the loader when ``augmented``) vs gathered from the cache."""
    from dist_spk.data.speakers import load_speakers
    from dist_spk.speaker.data import TrainCrops

    utterances = load_speakers(data).utterances
    speakers = sorted({u.speaker for u in utterances})
    configs = {"decoded": spk_config(data, augmented=augmented, on_device=False, speeds=speeds),
               "cached": spk_config(data, augmented=augmented, on_device=True, speeds=speeds)}
    batch = configs["cached"].data.batch_size
    rates = {"decoded": [], "cached": []}
    for name in ("decoded", "cached", "cached", "decoded"):
        crops = TrainCrops(utterances, speakers, configs[name].data, seed=0, cache=cache if name == "cached" else None)
        items = itertools.cycle(range(len(crops)))
        crops.__getitems__([next(items) for _ in range(batch)])  # warm-up: file durations
        started = time.perf_counter()
        for _ in range(SPK_BATCHES):
            crops.__getitems__([next(items) for _ in range(batch)])
        rates[name].append(SPK_BATCHES * batch / (time.perf_counter() - started))
    return max(rates["decoded"]), max(rates["cached"])


def spk_config(data, *, augmented: bool, on_device: bool, speeds: str = "[]"):
    from dist_spk.config import load_config

    probabilities = ("0.5", "0.3") if augmented else ("0", "0")
    overrides = [f"data.root={data}", f"data.speed_perturb={speeds}", f"data.augment_on_device={on_device}",
                 f"data.noise_probability={probabilities[0]}", f"data.reverb_probability={probabilities[1]}"]
    return load_config("spk", preset_name="cluster", overrides=overrides)


def spk_device_augmentation_rate(data) -> float:
    """Crops/s of the training step's noise (p 0.5) and reverb (p 0.3) on batches of 2 s crops, on this CPU."""
    from dist_spk.speaker.augment import CropAugment

    config = spk_config(data, augmented=True, on_device=True)
    augment = CropAugment(config.data, seed=0)
    waves = torch.randn(config.data.batch_size, int(config.data.crop_seconds * 16000)) * 0.1
    augment(waves)  # warm-up
    started = time.perf_counter()
    for _ in range(SPK_BATCHES // 4):
        augment(waves)
    return SPK_BATCHES // 4 * len(waves) / (time.perf_counter() - started)


def main() -> None:
    from dist_spk.data.training_cache import dataset_sources, open_cache, prepare

    torch.set_num_threads(1)
    root = corpus("small")
    caches = {}
    for task, data in (("seg", root / "diar"), ("spk", root / "spk")):
        sources = dataset_sources(data, task=task)
        started = time.perf_counter()
        path = prepare(sources, WORK / f"training-cache-{task}", progress=False)
        caches[task] = (open_cache(path, sources=sources), round(time.perf_counter() - started, 1))
    seg_pyannote, seg_ours = seg_rates(root / "diar", caches["seg"][0], 0.5)
    seg_plain, seg_cached = seg_rates(root / "diar", caches["seg"][0], 0.0)
    spk_plain, spk_cached = spk_rates(root / "spk", caches["spk"][0], augmented=False)
    spk_augmented, spk_on_device = spk_rates(root / "spk", caches["spk"][0], augmented=True)
    spk_speeds_plain, spk_speeds_cached = spk_rates(root / "spk", caches["spk"][0], augmented=False,
                                                    speeds="[0.9,1.1]")
    model, augmentation = model_rate(root / "diar"), device_augmentation_rate(root / "diar")
    record("data_feed", {
        "seg_loader_speedup_vs_pyannote": round(seg_ours / seg_pyannote, 2), "goal": ">= 10",
        "seg_chunks_per_s": {"pyannote_decode_and_augment_in_loader": round(seg_pyannote, 1),
                             "cache_augment_on_device": round(seg_ours, 1)},
        "seg_loader_speedup_vs_pyannote_augmentation_off": round(seg_cached / seg_plain, 2),
        "seg_chunks_per_s_augmentation_off": {"pyannote_decode": round(seg_plain, 1), "cache": round(seg_cached, 1)},
        "seg_on_device_augmentation_chunks_per_s_on_this_cpu": round(augmentation, 1),
        "spk_loader_speedup_vs_per_crop_decode": round(spk_cached / spk_plain, 2),
        "spk_crops_per_s": {"per_crop_decode": round(spk_plain, 1), "cache": round(spk_cached, 1)},
        "spk_loader_speedup_with_augmentation": round(spk_on_device / spk_augmented, 2),
        "spk_crops_per_s_with_augmentation": {"decode_and_augment_in_loader": round(spk_augmented, 1),
                                              "cache_augment_on_device": round(spk_on_device, 1)},
        "spk_loader_speedup_with_speed_perturbation": round(spk_speeds_cached / spk_speeds_plain, 2),
        "spk_crops_per_s_with_speed_perturbation": {"per_crop_decode": round(spk_speeds_plain, 1),
                                                    "cache": round(spk_speeds_cached, 1)},
        "spk_on_device_augmentation_crops_per_s_on_this_cpu": round(spk_device_augmentation_rate(root / "spk"), 1),
        "seg_model_chunks_per_s_on_this_cpu": round(model, 1),
        "assumed_gpu_chunks_per_s": GPU_CHUNKS_PER_S,
        "seg_loader_processes_per_gpu": {"pyannote": math.ceil(GPU_CHUNKS_PER_S / seg_pyannote),
                                         "ours": math.ceil(GPU_CHUNKS_PER_S / seg_ours)},
        "prepare_seconds": {task: seconds for task, (_, seconds) in caches.items()},
        "cache_hours": {task: round(cache.samples / 16000 / 3600, 2) for task, (cache, _) in caches.items()},
    }, command="python -m bench.data_feed")


if __name__ == "__main__":
    main()
