"""The successive-halving replay bench/asha.py uses to explain ASHA vs FIFO."""

from __future__ import annotations

import pytest
from bench.asha import rank_agreement, replay

# four trials, 4 epochs; "late" trails until epoch 3 and ends best
CURVES = {"early": [0.30, 0.20, 0.15, 0.14], "late": [0.45, 0.40, 0.10, 0.05],
          "mid": [0.35, 0.25, 0.20, 0.18], "bad": [0.50, 0.45, 0.40, 0.38]}


def test_replay_counts_epochs_and_keeps_the_best_seen_by_the_survivors():
    # grace 1, reduction 2: after epoch 1 early + mid go on; after epoch 2 early alone runs to 4
    assert replay(CURVES, grace=1, reduction=2) == (1 + 1 + 2 + 4, 0.14)
    # grace 3: late leads at epoch 3, two go on (reduction 2), and it is kept
    assert replay(CURVES, grace=3, reduction=2) == (3 + 3 + 4 + 4, 0.05)
    # no rung before the last epoch: FIFO
    assert replay(CURVES, grace=4, reduction=2) == (16, 0.05)


def test_rank_agreement_rises_as_the_late_trial_overtakes():
    agreement = rank_agreement(CURVES)
    assert agreement[-1] == pytest.approx(1.0)
    assert agreement[0] < agreement[2]
