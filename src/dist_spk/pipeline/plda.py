"""A PLDA of our own encoder's embedding space, in the files pyannote's VBx clustering loads.

pyannote 4's community-1 pipeline clusters with VBx on a PLDA fitted to WeSpeaker ResNet34's embeddings; that PLDA
means nothing in another encoder's space. :func:`fit_plda` fits the same two stages, the way VBx's recipe (and
pyannote's ``utils/vbx.py::vbx_setup``, which reads them) defines them:

1. ``xvec_transform.npz`` (``mean1``, ``lda``, ``mean2``): centre, length-normalise to sqrt(E), project with LDA to D
   dimensions (the within-speaker covariance whitened), centre again, length-normalise to sqrt(D);
2. ``plda.npz`` (``mu``, ``tr``, ``psi``): a two-covariance PLDA in that space: ``tr`` whitens the within-speaker
   covariance and diagonalises the between-speaker one, whose eigenvalues are ``psi``.

Written by hand (numpy + scipy's generalised eigensolver, a few lines each): no maintained Python package fits a
PLDA and writes these files; speechbrain's PLDA is another model (and another format).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dist_spk.errors import DistSpkError
from dist_spk.runs.files import replacing, write_text

TRANSFORM_FILE, PLDA_FILE = "xvec_transform.npz", "plda.npz"
LDA_DIMENSION = 128  # pyannote's PLDA truncates to this many dimensions (PLDA.lda_dimension)


def _l2_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _scatter(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(within-class, between-class) covariance of rows ``x`` (N, D) with class ``labels`` (N,)."""
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    means = np.zeros((len(classes), x.shape[1]))
    np.add.at(means, inverse, x)
    means /= counts[:, None]  # (K, D)
    centred = x - means[inverse]
    within = centred.T @ centred / len(x)
    offsets = means - x.mean(axis=0)
    between = (offsets * counts[:, None]).T @ offsets / len(x)
    return within, between


def _generalised_eigh(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and vectors ``V`` of ``a v = w b v``, with ``V.T b V = I``; ``b`` regularised so a
    rank-deficient scatter (fewer utterances than dimensions) still solves."""
    from scipy.linalg import eigh

    ridge = 1e-6 * np.trace(b) / len(b)
    values, vectors = eigh(a, b + ridge * np.eye(len(b)))
    return values[::-1], vectors[:, ::-1]


def fit_plda(embeddings: np.ndarray, speakers: list[str] | np.ndarray, *, lda_dimension: int = LDA_DIMENSION
             ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(``xvec_transform`` arrays, ``plda`` arrays) fitted on ``embeddings`` (N, E) of ``speakers`` (N labels).

    The LDA keeps ``min(lda_dimension, E, speakers - 1)`` dimensions (LDA has no more directions than that).
    """
    x = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(speakers)
    if x.ndim != 2 or len(x) != len(labels):
        raise DistSpkError(f"PLDA: {len(labels)} labels for embeddings of shape {x.shape}")
    if not np.isfinite(x).all():
        raise DistSpkError("PLDA: the embeddings hold NaN or infinite values (a diverged encoder?)")
    count = len(np.unique(labels))
    if count < 2:
        raise DistSpkError(f"PLDA: needs utterances of at least 2 speakers, got {count}")
    dimension = min(lda_dimension, x.shape[1], count - 1)
    mean1 = x.mean(axis=0)
    y = np.sqrt(x.shape[1]) * _l2_rows(x - mean1)  # (N, E)
    within, between = _scatter(y, labels)
    _, vectors = _generalised_eigh(between, within)
    lda = vectors[:, :dimension]  # (E, D): the most discriminant directions, within-class whitened
    z = y @ lda
    mean2 = z.mean(axis=0)
    u = np.sqrt(dimension) * _l2_rows(z - mean2)  # what vbx_setup's xvec_tf gives
    within, between = _scatter(u, labels)
    psi, vectors = _generalised_eigh(between, within)  # V.T W V = I, V.T B V = diag(psi)
    transform = {"mean1": mean1, "mean2": mean2, "lda": lda}
    plda = {"mu": u.mean(axis=0), "tr": vectors.T, "psi": np.maximum(psi, 1e-8)}
    return transform, plda


def save_plda(folder: Path, transform: dict[str, np.ndarray], plda: dict[str, np.ndarray], *,
              about: dict | None = None) -> Path:
    """``folder/xvec_transform.npz`` and ``folder/plda.npz`` (what ``PLDA.from_pretrained(folder)`` reads), and
    ``folder/plda.json`` (what it was fitted on); each through a temporary file and a rename."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, arrays in ((TRANSFORM_FILE, transform), (PLDA_FILE, plda)):
        with replacing(folder / name) as partial, partial.open("wb") as handle:  # a handle: savez adds no suffix
            np.savez(handle, **{key: value.astype(np.float64) for key, value in arrays.items()})
    if about is not None:
        write_text(folder / "plda.json", json.dumps(about, indent=1) + "\n")
    return folder


def identity_plda(dimension: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A PLDA that leaves length-normalised embeddings as they are: what an exported pipeline whose clustering is
    not VBx carries in ``plda/`` (pyannote's ``SpeakerDiarization`` loads a PLDA whatever its clustering)."""
    eye = np.eye(dimension)
    zeros = np.zeros(dimension)
    return {"mean1": zeros, "mean2": zeros, "lda": eye}, {"mu": zeros, "tr": eye, "psi": np.ones(dimension)}


def load_plda(folder: str | Path):
    """pyannote's ``PLDA`` from ``folder`` (its own loader), or one clear error naming what is missing."""
    from pyannote.audio.core.plda import PLDA

    folder = Path(folder)
    missing = [name for name in (TRANSFORM_FILE, PLDA_FILE) if not (folder / name).is_file()]
    if missing:
        raise DistSpkError(f"--plda {folder}: no {' and no '.join(missing)} (write one with dist-spk train plda)")
    try:
        return PLDA.from_pretrained(folder)
    except (KeyError, ValueError, OSError) as err:
        raise DistSpkError(f"--plda {folder}: not a PLDA pyannote can load ({type(err).__name__}: {err})") from None


def fit_encoder_plda(embedding: str | Path, data: str | Path, out: Path, *, format: str = "auto",
                     per_speaker: int = 20, max_seconds: float = 10.0, device: str = "cpu",
                     lda_dimension: int = LDA_DIMENSION) -> dict:
    """``dist-spk train plda``: embed up to ``per_speaker`` utterances (at most ``max_seconds`` each, the scale of a
    diarization chunk) of every speaker in ``data`` with the encoder ``embedding``, fit, save in ``out``.

    Returns what ``plda.json`` records.
    """
    from dist_spk.data.speakers import load_speakers
    from dist_spk.speaker.inference import embed_utterances, load_speaker_module

    module = load_speaker_module(embedding, device=device)
    manifest = load_speakers(data, format=format)
    if manifest.problems:
        from dist_spk.data.problems import format_problems

        raise DistSpkError(f"{data}: cannot fit a PLDA:\n" + format_problems(manifest.problems))
    utterances = [u for _, group in sorted(manifest.by_speaker().items()) for u in group[:per_speaker]]
    embeddings = embed_utterances(module, utterances, max_seconds=max_seconds)
    speakers = [u.speaker for u in utterances]
    transform, plda = fit_plda(embeddings, speakers, lda_dimension=lda_dimension)
    about = {"embedding": str(embedding), "data": str(data), "speakers": len(set(speakers)),
             "utterances": len(utterances), "embedding_dimension": int(embeddings.shape[1]),
             "lda_dimension": int(transform["lda"].shape[1]), "max_seconds": max_seconds}
    save_plda(out, transform, plda, about=about)
    _write_card(out, about, embedding)
    return about


def _write_card(out: Path, about: dict, embedding: str | Path) -> None:
    from dist_spk.runs.card import provenance, provenance_section, render_card
    from dist_spk.runs.run_dir import resolve_checkpoint

    summary = (f"An LDA ({about['embedding_dimension']} -> {about['lda_dimension']} dimensions) and two-covariance "
               f"PLDA fitted by dist_spk on {about['utterances']} utterances of {about['speakers']} speakers of "
               f"`{about['data']}` (at most {about['max_seconds']:g} s each), in the files pyannote's VBx clustering "
               "loads. It belongs to the embedding space of the encoder below only.")
    source = provenance_section("the encoder it belongs to", provenance(embedding, resolve_checkpoint(embedding)[1]))
    usage = (f'dist-spk evaluate pipeline --segmentation SEG --embedding {embedding} --data DATA --tune-on dev \\\n'
             f'    --clustering vbx --plda {out} --export PIPELINE   # a pipeline folder that carries it in plda/\n'
             f'# in Python: pyannote.audio.core.plda.PLDA.from_pretrained("{out}")')
    write_text(out / "README.md", render_card("dist_spk PLDA for VBx clustering", summary, [source], usage,
                                              language="bash"))
