"""Clustering speaker embeddings: agglomerative, HDBSCAN, bisecting k-means (scikit-learn's), and their quality.

The seed teams compared these three on their encoder's embeddings by ARI and FMI; :func:`clustering_quality` gives
ARI, NMI and FMI against the true speakers. Embeddings are unit-normalised first, so Euclidean distances order
pairs as cosine distances do (every method sees the cosine geometry the encoder was trained for).

- ``agglomerative``: average linkage on cosine distance; with a known count, that many clusters, else the tree
  cut at ``threshold`` (cosine distance).
- ``hdbscan``: density-based, finds its own count; points it calls noise join the nearest cluster's centroid (a
  diarization must label every segment).
- ``bisecting_kmeans``: splits the largest cluster in two until there are enough; with no count given, the count
  in ``2..max_clusters`` with the best silhouette.
"""

from __future__ import annotations

import numpy as np

from dist_spk.errors import ConfigError

METHODS = ("agglomerative", "hdbscan", "bisecting_kmeans")


def unit(embeddings: np.ndarray) -> np.ndarray:
    return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(1e-12)


def _agglomerative(points: np.ndarray, count: int | None, *, threshold: float, **_) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    if count is not None:
        return AgglomerativeClustering(n_clusters=count, metric="cosine", linkage="average").fit_predict(points)
    return AgglomerativeClustering(n_clusters=None, distance_threshold=threshold, metric="cosine",
                                   linkage="average").fit_predict(points)


def _nearest_for_noise(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """HDBSCAN's noise (-1) assigned to the nearest cluster centroid; all noise is one cluster."""
    kept = np.unique(labels[labels >= 0])
    if kept.size == 0:
        return np.zeros(len(points), dtype=int)
    centroids = np.stack([points[labels == k].mean(axis=0) for k in kept])  # (K, E)
    nearest = kept[np.argmax(points @ centroids.T, axis=1)]  # cosine: points are unit vectors
    return np.where(labels >= 0, labels, nearest)


def _hdbscan(points: np.ndarray, count: int | None, *, min_cluster_size: int, **_) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    if len(points) < 2:
        return np.zeros(len(points), dtype=int)
    labels = HDBSCAN(min_cluster_size=max(2, min(min_cluster_size, len(points))), copy=True).fit_predict(points)
    return np.unique(_nearest_for_noise(points, labels), return_inverse=True)[1]  # 0..K-1


def _bisecting_kmeans(points: np.ndarray, count: int | None, *, max_clusters: int, **_) -> np.ndarray:
    from sklearn.cluster import BisectingKMeans
    from sklearn.metrics import silhouette_score

    def fit(k: int) -> np.ndarray:
        return BisectingKMeans(n_clusters=k, random_state=0).fit_predict(points)

    if count is not None:
        return fit(min(count, len(points)))
    candidates = range(2, min(max_clusters, len(points) - 1) + 1)
    if not candidates:
        return np.zeros(len(points), dtype=int)
    fits = {k: fit(k) for k in candidates}
    return fits[max(fits, key=lambda k: silhouette_score(points, fits[k]))]


CLUSTERERS = {"agglomerative": _agglomerative, "hdbscan": _hdbscan, "bisecting_kmeans": _bisecting_kmeans}


def cluster(embeddings: np.ndarray, method: str, *, num_clusters: int | None = None, threshold: float = 0.7,
            min_cluster_size: int = 5, max_clusters: int = 20) -> np.ndarray:
    """Cluster labels ``0..K-1`` for (N, E) ``embeddings``.

    ``num_clusters``: the count when known (HDBSCAN ignores it); ``threshold``: agglomerative's cut without a count
    (cosine distance); ``min_cluster_size``: HDBSCAN's; ``max_clusters``: bisecting k-means' search without a count.
    """
    if method not in CLUSTERERS:
        raise ConfigError(f"unknown clustering {method!r}; valid: {', '.join(METHODS)}")
    return CLUSTERERS[method](unit(np.asarray(embeddings, dtype=np.float64)), num_clusters, threshold=threshold,
                              min_cluster_size=min_cluster_size, max_clusters=max_clusters)


def clustering_quality(embeddings: np.ndarray, speakers: list[str], *, method: str = "agglomerative"
                       ) -> dict[str, float]:
    """``method``'s clusters (with the oracle speaker count where the method takes one) against the true speakers:
    adjusted Rand index, normalised mutual information, Fowlkes-Mallows index."""
    from sklearn.metrics import adjusted_rand_score, fowlkes_mallows_score, normalized_mutual_info_score

    predicted = cluster(embeddings, method, num_clusters=len(set(speakers)))
    return {"ari": float(adjusted_rand_score(speakers, predicted)),
            "nmi": float(normalized_mutual_info_score(speakers, predicted)),
            "fmi": float(fowlkes_mallows_score(speakers, predicted))}
