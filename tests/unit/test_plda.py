"""A PLDA of our own: fitted on separable synthetic speakers, loaded by pyannote's own ``get_plda``, and pyannote's
VBx clustering recovers the speakers through it."""

from __future__ import annotations

import numpy as np
import pytest

from dist_spk.errors import DistSpkError
from dist_spk.pipeline.plda import fit_plda, identity_plda, save_plda


def speakers(count: int = 12, per_speaker: int = 15, dimension: int = 48, *, seed: int = 0):
    """(embeddings, labels): each speaker a random direction plus within-speaker noise, ResNet-like positive values."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((count, dimension))
    labels = np.repeat(np.arange(count), per_speaker)
    return centres[labels] + 0.35 * rng.standard_normal((len(labels), dimension)), labels.astype(str)


def test_the_fitted_plda_whitens_within_and_diagonalises_between_speaker_covariance(tmp_path):
    from pyannote.audio.pipelines.utils import get_plda

    x, labels = speakers()
    transform, plda = fit_plda(x, labels)
    assert transform["lda"].shape == (48, 11)  # at most speakers - 1 discriminant directions
    save_plda(tmp_path, transform, plda, about={"test": True})
    loaded = get_plda(str(tmp_path))  # pyannote's loader, as SpeakerDiarization(plda=...) calls it
    features = loaded(x)  # (N, D) in the PLDA space
    centred = features - features.mean(axis=0)
    means = np.stack([features[labels == s].mean(axis=0) for s in np.unique(labels)])
    within = sum(((features[labels == s] - means[i]).T @ (features[labels == s] - means[i]))
                 for i, s in enumerate(np.unique(labels))) / len(x)
    between = (means - features.mean(axis=0)).T @ (means - features.mean(axis=0)) / len(means)
    assert np.allclose(within, np.eye(len(within)), atol=1e-6)
    assert np.allclose(between, np.diag(np.diag(between)), atol=1e-6)
    assert np.allclose(np.sort(np.diag(between))[::-1], loaded.phi, rtol=1e-6)
    assert loaded.phi.min() > 10  # separable speakers: between-speaker variance far above within
    assert np.isfinite(centred).all()


def test_pyannotes_vbx_recovers_the_speakers_through_it(tmp_path):
    from pyannote.audio.pipelines.clustering import VBxClustering
    from pyannote.audio.pipelines.utils import get_plda
    from pyannote.core import SlidingWindow, SlidingWindowFeature
    from sklearn.metrics import adjusted_rand_score

    x, labels = speakers(seed=1)
    save_plda(tmp_path, *fit_plda(x, labels))
    unseen, truth = speakers(count=4, per_speaker=10, seed=7)  # voices the PLDA never saw: one file's speakers
    clustering = VBxClustering(get_plda(str(tmp_path)))
    clustering.instantiate({"threshold": 0.6, "Fa": 0.07, "Fb": 0.8})  # community-1's defaults
    # one speaker active in every chunk, as pyannote's pipeline hands its clustering (chunks, speakers, dim)
    segmentations = SlidingWindowFeature(np.ones((len(unseen), 10, 1)), SlidingWindow(duration=5.0, step=0.5))
    hard, _, centroids = clustering(unseen[:, None, :], segmentations=segmentations, min_clusters=1,
                                    max_clusters=10)
    assert len(centroids) == 4
    assert adjusted_rand_score(truth, hard[:, 0]) == pytest.approx(1.0)


def test_an_identity_plda_only_length_normalises(tmp_path):
    from pyannote.audio.pipelines.utils import get_plda

    save_plda(tmp_path, *identity_plda(8))
    x = np.random.default_rng(0).standard_normal((5, 8))
    expected = np.sqrt(8) * x / np.linalg.norm(x, axis=1, keepdims=True)
    found = get_plda(str(tmp_path))(x)  # pyannote's loader re-orders the dimensions: compare the geometry
    assert np.allclose(found @ found.T, expected @ expected.T)


def test_bad_embeddings_are_one_clear_error():
    x, labels = speakers(count=3)
    with pytest.raises(DistSpkError, match="at least 2 speakers"):
        fit_plda(x, np.zeros(len(x)))
    x[0, 0] = np.nan
    with pytest.raises(DistSpkError, match="NaN"):
        fit_plda(x, labels)
