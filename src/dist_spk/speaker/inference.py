"""Using a trained speaker encoder: load it, embed audio, evaluate on trials, export it.

``dist-spk evaluate spk``, ``dist-spk embed`` and ``dist-spk export spk`` are thin shells over this.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from dist_spk.data.problems import format_problems
from dist_spk.data.speakers import Utterance, load_speakers
from dist_spk.data.trials import parse_trials
from dist_spk.errors import DataError, DistSpkError
from dist_spk.runs.run_dir import resolve_checkpoint
from dist_spk.speaker.data import EvalUtterances, pad_batch
from dist_spk.speaker.metrics import as_norm, cosine_scores, eer, min_dcf
from dist_spk.speaker.module import SpeakerModule, verification_metrics


def load_speaker_module(checkpoint: str | Path, *, device: str = "cpu") -> SpeakerModule:
    """A trained SpeakerModule from a checkpoint file or run directory, in eval mode on ``device``.

    Loaded with ``weights_only=True``: a checkpoint cannot run code. A checkpoint of another task,
    or a damaged file, is one clear error.
    """
    from dist_spk.runs.checkpoints import TASK_NAMES, read_checkpoint

    path, _ = resolve_checkpoint(checkpoint)
    payload, task = read_checkpoint(path)
    if task != "spk":
        raise DistSpkError(f"{path}: a {TASK_NAMES[task]} checkpoint, not a speaker-encoder one")
    hparams = payload["hyper_parameters"]
    module = SpeakerModule(hparams["config"], hparams["num_classes"])
    module.load_state_dict(payload["state_dict"])
    return module.eval().to(device)


@torch.inference_mode()
def embed_utterances(module: SpeakerModule, utterances: list[Utterance], *, batch_size: int = 32,
                     max_seconds: float = 20.0, device: str | None = None, show_progress: bool = False
                     ) -> np.ndarray:
    """(N, emb_size) embeddings, in the order of ``utterances``, ``batch_size`` zero-padded utterances per forward
    pass on ``device`` (default: where ``module`` is). The encoder masks padding, so an utterance's embedding does
    not depend on its batch."""
    from tqdm.auto import tqdm

    device = device or str(next(module.parameters()).device)
    module = module.to(device)
    loader = DataLoader(EvalUtterances(utterances, max_seconds=max_seconds), batch_size=batch_size,
                        collate_fn=pad_batch)
    embeddings = np.zeros((len(utterances), module.config.model.emb_size), dtype=np.float32)
    for indices, waves, lengths in tqdm(loader, desc="embedding", unit="batch", leave=False,
                                        disable=None if show_progress else True):
        embeddings[indices.numpy()] = module(waves.to(device), lengths.to(device)).float().cpu().numpy()
    return embeddings


def evaluate_speaker(checkpoint: str | Path, data: str | Path, trials: str | Path, *, format: str = "auto",
                     asnorm_cohort: int = 0, asnorm_top_k: int = 100, clustering: str = "agglomerative",
                     device: str = "cpu") -> dict[str, float]:
    """EER, minDCF (0.01, 0.05), and ``clustering``'s ARI, NMI and FMI on a trial list; with a cohort, AS-norm
    figures too.

    The AS-norm cohort is the mean embedding of up to ``asnorm_cohort`` speakers absent from the
    trials (three utterances each).
    """
    module = load_speaker_module(checkpoint, device=device)
    manifest = load_speakers(data, format=format)
    trials_path = Path(trials)
    if not trials_path.is_file():
        raise DataError(f"{trials_path}: trial list not found")
    parsed, problems = parse_trials(trials_path)
    keys = manifest.by_key()
    problems += [p for t in parsed for p in _unknown(trials_path, t, keys)]
    if problems or manifest.problems:
        raise DataError("cannot evaluate:\n" + format_problems(manifest.problems + problems))
    needed = sorted({t.enroll for t in parsed} | {t.test for t in parsed})
    utterances = [keys[k] for k in needed]
    embeddings = embed_utterances(module, utterances)
    metrics = verification_metrics(embeddings, utterances, parsed, clustering=clustering) | {
        "trials": float(len(parsed))}
    if asnorm_cohort > 0:
        position = {k: i for i, k in enumerate(needed)}
        enroll = embeddings[[position[t.enroll] for t in parsed]]
        test = embeddings[[position[t.test] for t in parsed]]
        cohort = _cohort(module, manifest, {u.speaker for u in utterances}, asnorm_cohort)
        scores = as_norm(cosine_scores(enroll, test), enroll, test, cohort, top_k=asnorm_top_k)
        labels = np.array([t.target for t in parsed])
        metrics |= {"eer_asnorm": eer(scores, labels)[0], "min_dcf_asnorm": min_dcf(scores, labels, p_target=0.01)}
    return metrics


def _unknown(path: Path, trial, keys: dict) -> list:
    from dist_spk.data.problems import Problem

    return [Problem(path, f"unknown utterance {key!r}: not in the dataset", trial.line)
            for key in (trial.enroll, trial.test) if key not in keys]


def _cohort(module: SpeakerModule, manifest, excluded: set[str], count: int) -> np.ndarray:
    groups = {s: us[:3] for s, us in sorted(manifest.by_speaker().items()) if s not in excluded}
    speakers = list(groups)[:count]
    if not speakers:
        raise DataError(f"{manifest.root}: no speaker outside the trial list is left for the AS-norm cohort")
    flat = [u for s in speakers for u in groups[s]]
    embeddings = embed_utterances(module, flat)
    owners = np.array([u.speaker for u in flat])
    return np.stack([embeddings[owners == s].mean(axis=0) for s in speakers])


class _Exportable(nn.Module):
    """The encoder alone (no head): ``(waves (B, N), lengths (B,)) -> (B, emb_size)``."""

    def __init__(self, module: SpeakerModule):
        super().__init__()
        self.encoder = module.encoder

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.encoder(waves, lengths)
