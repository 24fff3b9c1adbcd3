"""``make bench``: every benchmark in turn, into bench/results.json (``python -m bench.run eer asha`` for some).

    eer          EER vs speechbrain (100k scores) and vs one numpy sort (1M)        ~1-2 min
    dataloading  segmentation loader chunks/s vs model chunks/s, cluster preset      ~1 min
    train_epoch  Ray Train worker vs plain Lightning; 2 DDP workers vs 1            ~9 min
    asha         ASHA vs FIFO on the same 12 trials (medium corpus); start-up cost  ~25 min
    trial_start  per-trial start-up, local test mode: in-process trials vs worker groups (watcher off, on)  ~14 min
    heldout      the demo's best models on unseen voices, beside trivial baselines  ~3 min (after make demo)
    checkpoint_bytes  bytes per epoch to the experiment, before/after one-copy checkpoints (strace)  ~6 min
    data_feed    loader examples/s per process: decoding each time vs the training cache, both tasks  ~3 min
    driver_callback  the search driver's time per trial event: W&B calls inline vs on their own thread  ~1 min
    search_vs_optuna  dist-spk tune spk vs Optuna TPE + Hyperband in one process, same space and budget  ~11 min
    spk_augmentation  speaker encoder on unseen voices: no augmentation vs on the device vs in the loader  ~8 min
    pipeline_speed  real-time factor of our exported pipeline vs community-1's architecture; batched embeddings  ~6 min
    clustering   agglomerative vs VBx (our PLDA), HDBSCAN, bisecting k-means; demo and held-out  ~15 min (after demo)
"""

from __future__ import annotations

import importlib
import sys

NAMES = ("eer", "dataloading", "train_epoch", "asha", "trial_start", "heldout", "checkpoint_bytes", "data_feed",
         "driver_callback", "search_vs_optuna", "spk_augmentation", "pipeline_speed", "clustering")

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(NAMES)
    unknown = [name for name in chosen if name not in NAMES]
    if unknown:
        sys.exit(f"unknown benchmark(s) {', '.join(unknown)}; valid: {', '.join(NAMES)}")
    for name in chosen:
        print(f"== {name}", flush=True)
        importlib.import_module(f"bench.{name}").main()
