"""Segmentation data pipeline: chunks/s of one loader process vs the model's chunks/s, at the cluster preset.

The loader side is pyannote's training data path exactly as a worker runs it (random 10 s chunks,
powerset targets, collation; augmentation is on in the cluster preset), in one process. The model
side is a training step (forward, loss, backward, optimizer) of the cluster preset's PyanNet on the
same batches, on this machine's CPU (no GPU here). ``loader_processes_to_feed_this_cpu`` says how many
DataLoader processes keep this model busy; a GPU is faster than this CPU by some factor F, and then
needs F times as many (the cluster preset has ``data.loader_workers`` = 4 per training worker).

    python -m bench.dataloading
"""

from __future__ import annotations

import itertools
import time

import torch

from bench.common import WORK, corpus, record

BATCHES = 12


def main() -> None:
    from dist_spk.config import load_config
    from dist_spk.data.protocol import load_protocol
    from dist_spk.launch.run import prepare_segmentation
    from dist_spk.optim import build_optimizer
    from dist_spk.segmentation.model import build_model
    from dist_spk.train.seg_loop import build_task

    torch.set_num_threads(1)  # one loader process, one training thread: per-process rates
    config = load_config("seg", preset_name="cluster", overrides=[f"data.root={corpus() / 'diar'}",
                                                                 "model.init=random", "data.loader_workers=0"])
    run_dir = WORK / "dataloading"
    payload = prepare_segmentation(config, run_dir)
    task = build_task(config, load_protocol(config.data.root), cache=payload["cache_file"])
    model = build_model(config.model, task)
    model.setup()  # "fit" would want a Trainer: only the task and the task-dependent layers are needed here
    loader = iter(task.train_dataloader())
    batches = [next(loader) for _ in range(2)]  # warm-up
    started = time.perf_counter()
    batches = [next(loader) for _ in range(BATCHES)]
    loader_rate = BATCHES * config.data.batch_size / (time.perf_counter() - started)

    optimizer = build_optimizer(model.parameters(), config.optim)
    model.train()
    step_times = []
    for batch in itertools.islice(itertools.cycle(batches), BATCHES // 2):
        started = time.perf_counter()
        optimizer.zero_grad()
        prediction = model(batch["X"])
        loss = prediction.float().mean()  # the loss is a small share of the step; the network is the cost
        loss.backward()
        optimizer.step()
        step_times.append(time.perf_counter() - started)
    model_rate = config.data.batch_size / sorted(step_times)[len(step_times) // 2]
    record("dataloading", {
        "loader_chunks_per_s_per_process": round(loader_rate, 1),
        "model_chunks_per_s_cpu_1_thread": round(model_rate, 1),
        "loader_processes_to_feed_this_cpu": round(model_rate / loader_rate, 2),
        "chunk_seconds": config.data.duration, "batch_size": config.data.batch_size,
        "augmentation_probability": config.augment.probability,
        "cluster_preset_loader_workers": load_config("seg", preset_name="cluster").data.loader_workers,
    }, command="python -m bench.dataloading")


if __name__ == "__main__":
    main()
