"""The feed: training examples per second of one loader process, decoding each time vs the training cache.

Segmentation: pyannote's training loader at the cluster preset (10 s chunks, batch 64, powerset targets, collation),
the same task and seed, once with pyannote's ``Audio`` (a decode per chunk) and once reading the cache
(:mod:`dist_spk.segmentation.cached_audio`); with augmentation off (the feed itself) and at the preset's p 0.5 (the
augmentation then runs in the loader process, as pyannote does it, and dominates both). Speaker encoder: 2 s crops
(``TrainCrops``), per-crop decode (and a header read per crop for utterances without an end time) vs the cache,
augmentation off. One process, one thread, the small demo corpus; runs interleaved A B B A, best of each kept.

    python -m bench.data_feed
"""

from __future__ import annotations

import itertools
import time

import torch

from bench.common import WORK, corpus, record

SEG_BATCHES = 6
SPK_CROPS = 600


def seg_rate(task, batches: int) -> float:
    loader = iter(task.train_dataloader())
    next(loader)  # warm-up
    started = time.perf_counter()
    for _ in range(batches):
        next(loader)
    return batches * task.batch_size / (time.perf_counter() - started)


def seg_rates(data, cache, probability: float) -> tuple[float, float]:
    from dist_spk.config import load_config
    from dist_spk.data.protocol import load_protocol
    from dist_spk.launch.run import prepare_segmentation
    from dist_spk.segmentation.cached_audio import CachedAudio
    from dist_spk.segmentation.model import build_model
    from dist_spk.train.seg_loop import build_task

    config = load_config("seg", preset_name="cluster", overrides=[
        f"data.root={data}", "model.init=random", "data.loader_workers=0", f"augment.probability={probability}"])
    task = build_task(config, load_protocol(config.data.root),
                      cache=prepare_segmentation(config, WORK / "data-feed")["cache_file"])
    model = build_model(config.model, task)
    model.setup()
    decoded_audio, cached_audio = model.audio, CachedAudio(cache)
    rates = {"decoded": [], "cached": []}
    for name in ("decoded", "cached", "cached", "decoded"):
        model.audio = decoded_audio if name == "decoded" else cached_audio
        rates[name].append(seg_rate(task, SEG_BATCHES))
    return max(rates["decoded"]), max(rates["cached"])


def spk_rates(data, cache) -> tuple[float, float]:
    from dist_spk.config import load_config
    from dist_spk.data.speakers import load_speakers
    from dist_spk.speaker.data import TrainCrops

    config = load_config("spk", preset_name="cluster", overrides=[
        f"data.root={data}", "data.noise_probability=0", "data.reverb_probability=0", "data.speed_perturb=[]"])
    utterances = load_speakers(data).utterances
    speakers = sorted({u.speaker for u in utterances})
    rates = {"decoded": [], "cached": []}
    for name in ("decoded", "cached", "cached", "decoded"):
        crops = TrainCrops(utterances, speakers, config.data, seed=0, cache=cache if name == "cached" else None)
        items = itertools.cycle(range(len(crops)))
        started = time.perf_counter()
        for _ in range(SPK_CROPS):
            crops[next(items)]
        rates[name].append(SPK_CROPS / (time.perf_counter() - started))
    return max(rates["decoded"]), max(rates["cached"])


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
    seg_plain, seg_cached = seg_rates(root / "diar", caches["seg"][0], 0.0)
    seg_aug_plain, seg_aug_cached = seg_rates(root / "diar", caches["seg"][0], 0.5)
    spk_plain, spk_cached = spk_rates(root / "spk", caches["spk"][0])
    record("data_feed", {
        "seg_loader_speedup_vs_pyannote": round(seg_cached / seg_plain, 2),
        "seg_chunks_per_s": {"pyannote_decode": round(seg_plain, 1), "cache": round(seg_cached, 1)},
        "seg_loader_speedup_vs_pyannote_with_augmentation_in_loader": round(seg_aug_cached / seg_aug_plain, 2),
        "seg_chunks_per_s_with_augmentation_p05": {"pyannote_decode": round(seg_aug_plain, 1),
                                                    "cache": round(seg_aug_cached, 1)},
        "spk_loader_speedup_vs_per_crop_decode": round(spk_cached / spk_plain, 2),
        "spk_crops_per_s": {"per_crop_decode": round(spk_plain, 1), "cache": round(spk_cached, 1)},
        "prepare_seconds": {task: seconds for task, (_, seconds) in caches.items()},
        "cache_hours": {task: round(cache.samples / 16000 / 3600, 2) for task, (cache, _) in caches.items()},
    }, command="python -m bench.data_feed")


if __name__ == "__main__":
    main()
