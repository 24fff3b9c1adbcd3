"""Clustering choices for speaker embeddings (and the diarization pipeline): agglomerative, HDBSCAN, bisecting
k-means, scored by ARI, NMI and FMI."""

from __future__ import annotations

import numpy as np
import pytest

from dist_spk.errors import ConfigError
from dist_spk.speaker.clustering import METHODS, cluster, clustering_quality

SPEAKERS, PER_SPEAKER, DIM = 5, 24, 32


def speakers_embeddings(spread: float, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Five speakers' embeddings around random directions, ``spread`` the within-speaker noise."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(SPEAKERS, DIM))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    labels = [f"spk{i % SPEAKERS}" for i in range(SPEAKERS * PER_SPEAKER)]
    points = np.stack([centers[i % SPEAKERS] + rng.normal(0, spread, DIM) for i in range(len(labels))])
    return points * rng.uniform(0.5, 3.0, size=(len(labels), 1)), labels  # norms vary: only directions count


@pytest.mark.parametrize("method", METHODS)
def test_each_method_is_perfect_on_separated_speakers_and_worse_on_mixed_ones(method):
    separated, speakers = speakers_embeddings(0.02)
    quality = clustering_quality(separated, speakers, method=method)
    assert quality == pytest.approx({"ari": 1.0, "nmi": 1.0, "fmi": 1.0})
    mixed, speakers = speakers_embeddings(0.6)
    worse = clustering_quality(mixed, speakers, method=method)
    assert worse["ari"] < 0.9 and worse["fmi"] < 0.95 and worse["nmi"] < 0.95


@pytest.mark.parametrize("method", METHODS)
def test_without_a_count_each_method_finds_the_speakers(method):
    separated, speakers = speakers_embeddings(0.02, seed=1)
    labels = cluster(separated, method, threshold=0.5)
    assert len(set(labels)) == SPEAKERS and sorted(set(labels)) == list(range(SPEAKERS))


def test_hdbscan_labels_every_point_and_a_wrong_name_is_refused():
    points, _ = speakers_embeddings(0.02)
    outlier = np.random.default_rng(3).normal(size=(1, DIM))
    labels = cluster(np.vstack([points, outlier]), "hdbscan")
    assert labels.min() >= 0 and len(labels) == len(points) + 1  # the outlier joined its nearest cluster
    with pytest.raises(ConfigError, match="unknown clustering 'kmeans'"):
        cluster(points, "kmeans")
