"""HDBSCAN and bisecting k-means as clustering steps of pyannote's diarization pipeline, beside its agglomerative one.

pyannote 4's ``SpeakerDiarization`` picks its clustering from a fixed enum (agglomerative, k-means with a known count,
VBx, oracle); these subclass its ``BaseClustering``, so the pipeline's embedding filtering, centroid assignment and
hyper-parameter tuning stay pyannote's, and only ``cluster`` (:mod:`dist_spk.speaker.clustering`) is ours.
"""

from __future__ import annotations

import numpy as np
from pyannote.audio.pipelines.clustering import BaseClustering
from pyannote.pipeline.parameter import Integer

from dist_spk.speaker.clustering import cluster

MAX_SPEAKERS = 20  # bisecting k-means tries 2..this many speakers per file when the count is not given


class HDBSCANClustering(BaseClustering):
    """HDBSCAN on unit-normalised embeddings; hyper-parameter ``min_cluster_size`` (segments)."""

    expects_num_clusters = False

    def __init__(self, metric: str = "cosine"):
        super().__init__(metric=metric)
        self.min_cluster_size = Integer(2, 30)

    def cluster(self, embeddings: np.ndarray, min_clusters: int, max_clusters: int, num_clusters: int | None = None
                ) -> np.ndarray:
        return cluster(embeddings, "hdbscan", min_cluster_size=self.min_cluster_size)


class BisectingKMeansClustering(BaseClustering):
    """Bisecting k-means; the given count, else the best silhouette within pyannote's min/max bounds."""

    expects_num_clusters = False

    def cluster(self, embeddings: np.ndarray, min_clusters: int, max_clusters: int, num_clusters: int | None = None
                ) -> np.ndarray:
        return cluster(embeddings, "bisecting_kmeans", num_clusters=num_clusters,
                       max_clusters=min(max_clusters, MAX_SPEAKERS))


STEPS = {"hdbscan": HDBSCANClustering, "bisecting_kmeans": BisectingKMeansClustering}
