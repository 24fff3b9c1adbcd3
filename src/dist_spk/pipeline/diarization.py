"""Full diarization from our two models, with pyannote.audio 4's ``SpeakerDiarization`` pipeline.

Segmentation: a fine-tuned PyanNet checkpoint (``dist-spk train seg``/``tune seg``, or any pyannote
segmentation checkpoint). Embedding: our speaker encoder (:mod:`dist_spk.pipeline.embedding`).
Clustering: pyannote's agglomerative clustering, or HDBSCAN or bisecting k-means
(:mod:`dist_spk.pipeline.clustering`). (pyannote 4's default, VBx, needs a PLDA fitted to the embedding space; the
hub's PLDA belongs to the WeSpeaker ResNet, not to our encoder.)

Hyper-parameters: ``segmentation.min_duration_off`` and, for agglomerative, ``clustering.threshold`` and
``clustering.min_cluster_size`` (the linkage is fixed to ``centroid``, as in pyannote's pretrained
pipelines); for HDBSCAN ``clustering.min_cluster_size``; bisecting k-means has none. Tuning uses
pyannote.pipeline's optimizer (Optuna TPE) on whole files of a split: in its
training mode the pipeline caches each file's segmentation and embeddings, so an iteration only
re-clusters.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from dist_spk.errors import DistSpkError

CLUSTERING = "AgglomerativeClustering"
CLUSTERINGS = ("agglomerative", "hdbscan", "bisecting_kmeans")
# The untuned starting point: pyannote/speaker-diarization-3.1's published values.
DEFAULT_PARAMS: dict[str, Any] = {
    "segmentation": {"min_duration_off": 0.0},
    "clustering": {"method": "centroid", "min_cluster_size": 12, "threshold": 0.7045654963945799},
}
# the other clusterings' starting points (HDBSCAN: the smallest speaker is ~5 segments of a file)
CLUSTERING_DEFAULTS: dict[str, dict[str, Any]] = {"agglomerative": DEFAULT_PARAMS["clustering"],
                                                  "hdbscan": {"min_cluster_size": 5}, "bisecting_kmeans": {}}


def default_params(clustering: str = "agglomerative") -> dict[str, Any]:
    """The untuned parameters of a pipeline with ``clustering``."""
    if clustering not in CLUSTERINGS:
        raise DistSpkError(f"unknown clustering {clustering!r}; valid: {', '.join(CLUSTERINGS)}")
    params = {"segmentation": dict(DEFAULT_PARAMS["segmentation"])}
    return params | ({"clustering": dict(CLUSTERING_DEFAULTS[clustering])} if CLUSTERING_DEFAULTS[clustering] else {})


def _unused_plda():
    """pyannote 4's pipeline loads a PLDA (from the hub) whatever the clustering; agglomerative never uses it."""
    from pyannote.audio.core.plda import PLDA

    class UnusedPLDA(PLDA):
        def __init__(self):  # no files: nothing calls it
            self.lda_dimension = 0

    return UnusedPLDA()


def build_pipeline(segmentation: str | Path, embedding: str | Path, *, step: float = 0.1, batch_size: int = 32,
                   clustering: str = "agglomerative"):
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
        ``agglomerative`` (pyannote's), ``hdbscan`` or ``bisecting_kmeans``.
    """
    from pyannote.audio.pipelines import SpeakerDiarization

    from dist_spk.pipeline.clustering import STEPS
    from dist_spk.pipeline.embedding import SpeakerEncoderModel
    from dist_spk.runs.checkpoints import allow_checkpoint_classes
    from dist_spk.runs.run_dir import resolve_checkpoint
    from dist_spk.segmentation.model import load_pretrained

    params = default_params(clustering)  # an unknown name is refused before any model loads
    allow_checkpoint_classes()
    segmentation_path = Path(segmentation)
    if segmentation_path.exists():
        segmentation_path, _ = resolve_checkpoint(segmentation_path)
    segmentation_model = load_pretrained(str(segmentation_path))
    if not getattr(segmentation_model.specifications, "powerset", False):
        raise DistSpkError(f"{segmentation}: not a powerset segmentation model (pyannote 4 pipelines need one)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline = SpeakerDiarization(
            legacy=True,
            segmentation=segmentation_model,
            segmentation_step=step,
            embedding=SpeakerEncoderModel.from_checkpoint(embedding),
            clustering=CLUSTERING,
            plda=_unused_plda(),
            embedding_batch_size=batch_size,
            segmentation_batch_size=batch_size,
        )
    if clustering in STEPS:
        pipeline.clustering = STEPS[clustering](metric=pipeline.clustering.metric)
    else:
        pipeline.freeze({"clustering": {"method": DEFAULT_PARAMS["clustering"]["method"]}})
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
