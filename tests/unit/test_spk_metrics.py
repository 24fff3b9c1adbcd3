"""EER/minDCF against a brute-force reference; AS-norm, shard merging and clustering quality."""

from __future__ import annotations

import numpy as np
import pytest

from dist_spk.speaker.metrics import as_norm, cosine_scores, eer, merge_shards, min_dcf


def brute_force(scores: np.ndarray, labels: np.ndarray, p_target: float) -> tuple[float, float]:
    """Every distinct threshold (accept score >= t), plus accept-nothing: the definitions in metrics.py."""
    targets, nontargets = scores[labels == 1], scores[labels == 0]
    best_gap, best_eer, best_dcf = np.inf, None, np.inf
    for t in [np.inf, *sorted(set(scores.tolist()), reverse=True)]:
        fnr = np.mean(targets < t)
        fpr = np.mean(nontargets >= t)
        if abs(fnr - fpr) < best_gap:
            best_gap, best_eer = abs(fnr - fpr), (fnr + fpr) / 2
        best_dcf = min(best_dcf, (fnr * p_target + fpr * (1 - p_target)) / min(p_target, 1 - p_target))
    return best_eer, best_dcf


@pytest.mark.parametrize("seed", range(5))
def test_eer_and_min_dcf_match_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = (rng.random(400) < 0.3).astype(int)
    scores = np.round(rng.normal(labels * 1.2, 1.0), 1)  # rounding makes many ties
    reference_eer, reference_dcf = brute_force(scores, labels, 0.05)
    assert eer(scores, labels)[0] == pytest.approx(reference_eer, abs=1e-12)
    assert min_dcf(scores, labels, p_target=0.05) == pytest.approx(reference_dcf, abs=1e-12)
    assert brute_force(scores, labels, 0.01)[1] == pytest.approx(min_dcf(scores, labels, p_target=0.01), abs=1e-12)


def test_known_cases():
    labels = np.array([1, 1, 0, 0])
    assert eer(np.array([0.9, 0.8, 0.2, 0.1]), labels)[0] == 0.0  # perfectly separable
    assert min_dcf(np.array([0.9, 0.8, 0.2, 0.1]), labels) == 0.0
    assert eer(np.array([0.1, 0.2, 0.8, 0.9]), labels)[0] == 1.0  # perfectly wrong
    assert eer(np.ones(4), labels)[0] == 0.5  # one tied score: chance
    with pytest.raises(ValueError):
        eer(np.ones(3), np.ones(3))


def test_cosine_and_as_norm():
    rng = np.random.default_rng(0)
    a, b, cohort = rng.normal(size=(5, 8)), rng.normal(size=(5, 8)), rng.normal(size=(30, 8))
    scores = cosine_scores(a, b)
    expected = [np.dot(x, y) / np.linalg.norm(x) / np.linalg.norm(y) for x, y in zip(a, b, strict=True)]
    assert scores == pytest.approx(expected)
    normed = as_norm(scores, a, b, cohort, top_k=10)
    assert normed == pytest.approx(as_norm(scores, b, a, cohort, top_k=10))  # symmetric in enroll/test
    assert normed.shape == scores.shape and not np.allclose(normed, scores)


def test_merge_shards_undoes_distributed_padding():
    embeddings = np.arange(5 * 2, dtype=np.float32).reshape(5, 2)
    # DistributedSampler over 5 items on 2 ranks: rank 0 gets 0 2 4, rank 1 gets 1 3 0 (padded)
    shards_i = [np.array([0, 2, 4]), np.array([1, 3, 0])]
    merged = merge_shards(shards_i, [embeddings[i] for i in shards_i], 5)
    assert np.array_equal(merged, embeddings)
    with pytest.raises(ValueError):
        merge_shards([np.array([0, 1])], [embeddings[:2]], 5)
