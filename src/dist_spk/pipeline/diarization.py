"""Full diarization from our two models, with pyannote.audio 4's ``SpeakerDiarization`` pipeline.

Segmentation: a fine-tuned PyanNet checkpoint (``dist-spk train seg``/``tune seg``, or any pyannote
segmentation checkpoint). Embedding: our speaker encoder (:mod:`dist_spk.pipeline.embedding`).
Clustering: pyannote's agglomerative clustering, pyannote's VBx with a PLDA fitted to our encoder's embedding space
(``dist-spk train plda``, :mod:`dist_spk.pipeline.plda`), or HDBSCAN or bisecting k-means
(:mod:`dist_spk.pipeline.clustering`).

Hyper-parameters: ``segmentation.min_duration_off``; agglomerative ``clustering.threshold`` and
``clustering.min_cluster_size`` (the linkage is fixed to ``centroid``, as in pyannote's pretrained
pipelines); VBx ``clustering.threshold``, ``Fa`` and ``Fb`` (community-1's); HDBSCAN ``clustering.min_cluster_size``;
bisecting k-means has none. Tuning uses pyannote.pipeline's optimizer (Optuna TPE) on whole files of a split: in its
training mode the pipeline caches each file's segmentation and embeddings, so an iteration only re-clusters.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from pyannote.audio.pipelines import SpeakerDiarization as PyannoteSpeakerDiarization

from dist_spk.errors import DistSpkError
from dist_spk.pipeline.clustering import STEPS

# our name -> the class name pyannote's pipeline (or ours, for the two of ours) takes as ``clustering``
CLUSTERING_CLASSES = {"agglomerative": "AgglomerativeClustering", "vbx": "VBxClustering",
                      "hdbscan": "HDBSCANClustering", "bisecting_kmeans": "BisectingKMeansClustering"}
CLUSTERINGS = tuple(CLUSTERING_CLASSES)
# The untuned starting points: agglomerative, pyannote/speaker-diarization-3.1's published values; VBx,
# community-1's (SpeakerDiarization.default_parameters); HDBSCAN, the smallest speaker is ~5 segments of a file
CLUSTERING_DEFAULTS: dict[str, dict[str, Any]] = {
    "agglomerative": {"method": "centroid", "min_cluster_size": 12, "threshold": 0.7045654963945799},
    "vbx": {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8},
    "hdbscan": {"min_cluster_size": 5},
    "bisecting_kmeans": {},
}
DEFAULT_PARAMS: dict[str, Any] = {"segmentation": {"min_duration_off": 0.0},
                                  "clustering": CLUSTERING_DEFAULTS["agglomerative"]}
OWN_STEPS = {CLUSTERING_CLASSES[name]: step for name, step in STEPS.items()}


def check_clustering(clustering: str, plda: str | Path | None = None) -> None:
    """One clear error for an unknown clustering, VBx without a PLDA, or a PLDA the clustering would not use."""
    if clustering not in CLUSTERINGS:
        raise DistSpkError(f"unknown clustering {clustering!r}; valid: {', '.join(CLUSTERINGS)}")
    if clustering == "vbx" and plda is None:
        raise DistSpkError("--clustering vbx needs --plda DIR: a PLDA fitted to this encoder's embeddings "
                           "(dist-spk train plda --embedding RUN --data SPEAKERS --out DIR)")
    if clustering != "vbx" and plda is not None:
        raise DistSpkError(f"--plda is used by --clustering vbx only, not by {clustering}")


def default_params(clustering: str = "agglomerative") -> dict[str, Any]:
    """The untuned parameters of a pipeline with ``clustering``."""
    if clustering not in CLUSTERINGS:
        raise DistSpkError(f"unknown clustering {clustering!r}; valid: {', '.join(CLUSTERINGS)}")
    params = {"segmentation": dict(DEFAULT_PARAMS["segmentation"])}
    return params | ({"clustering": dict(CLUSTERING_DEFAULTS[clustering])} if CLUSTERING_DEFAULTS[clustering] else {})


def _unused_plda():
    """pyannote 4's pipeline loads a PLDA whatever the clustering; only VBx uses it."""
    from pyannote.audio.core.plda import PLDA

    class UnusedPLDA(PLDA):
        def __init__(self):  # no files: nothing calls it
            self.lda_dimension = 0

    return UnusedPLDA()


class SpeakerDiarization(PyannoteSpeakerDiarization):
    """pyannote 4's ``SpeakerDiarization`` that also takes our two clusterings (``HDBSCANClustering``,
    ``BisectingKMeansClustering``) and runs without a PLDA when the clustering is not VBx.

    An exported folder names pyannote's own class in its ``config.yaml`` whenever the clustering is pyannote's; this
    one only for ours (``Pipeline.from_pretrained`` imports it by name: dist_spk must be installed, as for the
    encoder).
    """

    def __init__(self, *, clustering: str = "AgglomerativeClustering", plda=None, **kwargs):
        own = OWN_STEPS.get(clustering)
        if plda is None and clustering != "VBxClustering":
            plda = _unused_plda()
        super().__init__(clustering="AgglomerativeClustering" if own else clustering, plda=plda, **kwargs)
        if own is not None:
            self.clustering = own(metric=self.clustering.metric)
            self.klustering = clustering
            self._expects_num_speakers = self.clustering.expects_num_clusters


def build_pipeline(segmentation: str | Path, embedding: str | Path, *, step: float = 0.1, batch_size: int = 32,
                   clustering: str = "agglomerative", plda: str | Path | None = None, device: str = "cpu"):
    """A pyannote ``SpeakerDiarization`` pipeline (returns plain Annotations) from our two checkpoints.

    Parameters
    ----------
    segmentation
        Segmentation checkpoint file or run directory (or a hub id, with ``$HF_TOKEN``).
    embedding
        Speaker-encoder checkpoint file or run directory.
    step
        Sliding-window step, as a fraction of the segmentation model's chunk duration.
    batch_size
        Chunks per forward pass, for both models.
    clustering
        ``agglomerative`` (pyannote's), ``vbx`` (pyannote's, with ``plda``), ``hdbscan`` or ``bisecting_kmeans``.
    plda
        With ``vbx``: a folder with ``xvec_transform.npz`` and ``plda.npz`` fitted to the encoder
        (``dist-spk train plda``).
    device
        ``cpu``, ``cuda`` or ``cuda:N``: where both models run.
    """
    import torch

    from dist_spk.pipeline.embedding import SpeakerEncoderModel
    from dist_spk.runs.checkpoints import allow_checkpoint_classes
    from dist_spk.runs.run_dir import resolve_checkpoint
    from dist_spk.segmentation.model import load_pretrained

    check_clustering(clustering, plda)  # refused before any model loads
    params = default_params(clustering)
    allow_checkpoint_classes()
    segmentation_path = Path(segmentation)
    if segmentation_path.exists():
        segmentation_path, _ = resolve_checkpoint(segmentation_path)
    segmentation_model = load_pretrained(str(segmentation_path))
    if not getattr(segmentation_model.specifications, "powerset", False):
        raise DistSpkError(f"{segmentation}: not a powerset segmentation model (pyannote 4 pipelines need one)")
    plda_model = None
    if plda is not None:
        from dist_spk.pipeline.plda import load_plda

        plda_model = load_plda(plda)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline = SpeakerDiarization(
            legacy=True,
            segmentation=segmentation_model,
            segmentation_step=step,
            embedding=SpeakerEncoderModel.from_checkpoint(embedding),
            clustering=CLUSTERING_CLASSES[clustering],
            plda=plda_model,
            embedding_batch_size=batch_size,
            segmentation_batch_size=batch_size,
        )
    if clustering == "agglomerative":
        pipeline.freeze({"clustering": {"method": DEFAULT_PARAMS["clustering"]["method"]}})
    pipeline.to(torch.device(device))
    return pipeline.instantiate(params)


def free_params(params: dict) -> dict:
    """``params`` without the frozen linkage method (what instantiate and the optimizer take)."""
    return {section: {k: v for k, v in values.items() if k != "method"} for section, values in params.items()}


def tune_pipeline(pipeline, files: list, *, iterations: int = 100, seed: int = 0, start: dict | None = None,
                  show_progress: bool = True) -> tuple[dict, list[float]]:
    """Search the pipeline's free hyper-parameters on ``files``; return (best params, best loss per iteration).

    The objective is pyannote's greedy-mapping DER over all files (collar 0, overlap scored). The
    first iteration evaluates ``start`` (default: the parameters the pipeline holds now, e.g. its defaults), so the
    result is never worse than it on ``files``. The pipeline is left instantiated with the best parameters.
    """
    import optuna
    from pyannote.pipeline import Optimizer
    from tqdm import tqdm

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optimizer = Optimizer(pipeline, sampler=optuna.samplers.TPESampler(seed=seed))
    best: list[float] = []
    start = start or pipeline.parameters(instantiated=True)
    results = optimizer.tune_iter(files, warm_start=free_params(start), show_progress=False)
    with warnings.catch_warnings():
        # pyannote.pipeline 4's Optimizer samples with optuna's suggest_uniform (deprecated since optuna 3): a
        # FutureWarning that no call of ours can avoid
        warnings.filterwarnings("ignore", message="suggest_uniform has been deprecated", category=FutureWarning)
        for _ in tqdm(range(iterations), desc="pipeline tuning", unit="iter", leave=False,
                      disable=None if show_progress else True):
            result = next(results)
            best.append(float(result["loss"]))
        params = optimizer.best_params  # it samples the best trial's values again
    pipeline.instantiate(params)
    return params, best
