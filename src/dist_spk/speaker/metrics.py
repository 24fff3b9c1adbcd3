"""Speaker-verification and clustering metrics, vectorised.

EER and minDCF come from one sort of the scores and two cumulative sums (the same approach as
pyannote's torchmetrics EER): accepting the k best-scored trials gives ``fp = k - tp`` false alarms
and ``P - tp`` misses for every k at once. Thresholds sit only between distinct scores, so ties are
never split. With DDP, ranks gather embeddings first (:func:`merge_shards`), then every rank scores
all trials and gets the same figures.

EER is ``(FNR + FPR) / 2`` at the threshold where ``|FNR - FPR|`` is smallest; minDCF is
``min_t (C_miss FNR(t) P_target + C_fa FPR(t) (1 - P_target)) / min(C_miss P_target, C_fa (1 - P_target))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ErrorRates:
    """False-negative and false-positive rates at every distinct threshold, highest threshold first."""

    fnr: np.ndarray
    fpr: np.ndarray
    thresholds: np.ndarray  # accept scores >= threshold; +inf accepts nothing


def error_rates(scores: np.ndarray, labels: np.ndarray) -> ErrorRates:
    """FNR/FPR curves from one sort; ``labels`` are 1 for target trials, 0 otherwise."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        raise ValueError("EER needs both target and non-target trials")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    tp = np.cumsum(sorted_labels)  # targets accepted when the k best are accepted
    fp = np.arange(1, len(scores) + 1) - tp
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]  # cut only between distinct scores
    tp, fp = np.r_[0, tp[last_of_tie]], np.r_[0, fp[last_of_tie]]
    thresholds = np.r_[np.inf, sorted_scores[last_of_tie]]
    return ErrorRates(fnr=1 - tp / positives, fpr=fp / negatives, thresholds=thresholds)


def eer(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(equal error rate, its threshold): the same definition as :func:`error_rates`, for the cost of one sort.

    Only the crossing of FNR and FPR matters, so instead of the whole curve: sort the target and the
    non-target scores apart (together, one sort's worth of work), then bisect. At a threshold t,
    ``FNR = #targets < t / P`` and ``FPR = #non-targets >= t / N`` (two binary searches), and
    ``FNR - FPR`` never decreases with t, so along either sorted array the best threshold sits next to
    the first one where it is >= 0. Ties in ``|FNR - FPR|`` go to the higher threshold, as in the curve.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    targets, nontargets = np.sort(scores[labels]), np.sort(scores[~labels])
    if len(targets) == 0 or len(nontargets) == 0:
        raise ValueError("EER needs both target and non-target trials")

    def rates(threshold: float) -> tuple[float, float]:
        fnr = np.searchsorted(targets, threshold, side="left") / len(targets)
        fpr = (len(nontargets) - np.searchsorted(nontargets, threshold, side="left")) / len(nontargets)
        return float(fnr), float(fpr)

    best = (1.0, -np.inf, 1.0, 0.0)  # (|FNR - FPR|, -threshold, FNR, FPR): accept nothing, t = +inf
    for candidates in (targets, nontargets):
        low, high = 0, len(candidates)
        while low < high:  # first candidate with FNR - FPR >= 0
            middle = (low + high) // 2
            fnr, fpr = rates(candidates[middle])
            low, high = (low, middle) if fnr - fpr >= 0 else (middle + 1, high)
        for index in (low - 1, low):
            if 0 <= index < len(candidates):
                fnr, fpr = rates(candidates[index])
                best = min(best, (abs(fnr - fpr), -float(candidates[index]), fnr, fpr))
    gap, negative_threshold, fnr, fpr = best
    return (fnr + fpr) / 2, -negative_threshold


def min_dcf(scores: np.ndarray, labels: np.ndarray, *, p_target: float = 0.01, c_miss: float = 1.0,
            c_fa: float = 1.0) -> float:
    """Normalised minimum detection cost (NIST SRE definition)."""
    rates = error_rates(scores, labels)
    cost = c_miss * rates.fnr * p_target + c_fa * rates.fpr * (1 - p_target)
    return float(cost.min() / min(c_miss * p_target, c_fa * (1 - p_target)))


def cosine_scores(enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, E) arrays."""
    enroll = enroll / np.linalg.norm(enroll, axis=1, keepdims=True).clip(1e-12)
    test = test / np.linalg.norm(test, axis=1, keepdims=True).clip(1e-12)
    return np.sum(enroll * test, axis=1)


def as_norm(scores: np.ndarray, enroll: np.ndarray, test: np.ndarray, cohort: np.ndarray, *, top_k: int = 200
            ) -> np.ndarray:
    """Adaptive symmetric score normalisation against a cohort of (speaker-mean) embeddings.

    Each side is normalised by the mean and std of its ``top_k`` highest cosine scores against the cohort.
    """

    def top_stats(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(1e-12)
        cohort_unit = cohort / np.linalg.norm(cohort, axis=1, keepdims=True).clip(1e-12)
        against = unit @ cohort_unit.T  # (N, cohort)
        k = min(top_k, against.shape[1])
        top = -np.sort(-against, axis=1)[:, :k]
        return top.mean(axis=1), top.std(axis=1).clip(1e-6)

    mean_e, std_e = top_stats(enroll)
    mean_t, std_t = top_stats(test)
    return 0.5 * ((scores - mean_e) / std_e + (scores - mean_t) / std_t)


def merge_shards(indices: list[np.ndarray], embeddings: list[np.ndarray], total: int) -> np.ndarray:
    """Embeddings of all ``total`` items from per-rank shards (DistributedSampler repeats some to pad)."""
    merged = np.full((total, embeddings[0].shape[1]), np.nan, dtype=np.float32)
    for rank_indices, rank_embeddings in zip(indices, embeddings, strict=True):
        merged[rank_indices] = rank_embeddings
    if np.isnan(merged).any():
        raise ValueError("some items were embedded by no rank")
    return merged
