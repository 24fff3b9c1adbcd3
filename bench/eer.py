"""EER: ours vs speechbrain's on the same 100k scores (equal results checked), and vs one numpy sort on 1M.

    python -m bench.eer
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from bench.common import record
from dist_spk.speaker.metrics import eer


def scores(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.random(count) < 0.1  # VoxCeleb-like: one target trial in ten
    return rng.normal(labels * 2.0, 1.0).astype(np.float32), labels


def timed(function, *args, repeats: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        value = function(*args)
        times.append(time.perf_counter() - started)
    return statistics.median(times), value


def main() -> None:
    import torch
    from speechbrain.utils.metric_stats import EER as speechbrain_eer

    s, labels = scores(100_000)
    ours_s, (ours, _) = timed(eer, s, labels, repeats=5)
    positives, negatives = torch.from_numpy(s[labels]), torch.from_numpy(s[~labels])
    theirs_s, (theirs, _) = timed(speechbrain_eer, positives, negatives, repeats=1)
    # speechbrain interpolates its threshold grid: the same EER to within one trial's share
    assert abs(ours - float(theirs)) < 1e-3, (ours, float(theirs))

    big, big_labels = scores(1_000_000, seed=1)
    as64 = big.astype(np.float64)
    eer_s, _ = timed(eer, big, big_labels, repeats=7)
    sort_s, _ = timed(np.sort, as64, repeats=7)
    record("eer", {
        "eer_speedup_vs_speechbrain": round(theirs_s / ours_s, 1), "goal_speedup": ">= 500",
        "ours_100k_s": round(ours_s, 4), "speechbrain_100k_s": round(theirs_s, 2),
        "eer_ours": round(ours, 6), "eer_speechbrain": round(float(theirs), 6),
        "eer_vs_sort_ratio": round(eer_s / sort_s, 2), "goal_ratio": "<= 3",
        "eer_1m_s": round(eer_s, 4), "numpy_sort_1m_float64_s": round(sort_s, 4),
    }, command="python -m bench.eer")


if __name__ == "__main__":
    main()
