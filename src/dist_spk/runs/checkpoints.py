"""Which task a checkpoint belongs to, checked before a run resumes from it.

Checkpoints are read with ``weights_only=True`` (a checkpoint cannot run code; pyannote's few
classes are allow-listed), so a damaged file, or one of the other task, is one clear error naming
the file instead of a traceback from deep inside Lightning.
"""

from __future__ import annotations

from pathlib import Path

from dist_spk.config.registry import TASKS
from dist_spk.errors import DistSpkError

TASK_NAMES = {name: spec.label for name, spec in TASKS.items()}  # the task registry's (config/registry.py)


def read_checkpoint(path: Path) -> tuple[dict, str]:
    """(the checkpoint's contents, ``seg`` or ``spk``) for a Lightning checkpoint written by either task."""
    import torch

    allow_checkpoint_classes()
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle garbage, unknown globals
        first_line = str(err).splitlines()[0] if str(err) else ""
        raise DistSpkError(f"{path}: not a readable checkpoint ({type(err).__name__}: {first_line})") from None
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise DistSpkError(f"{path}: not a Lightning checkpoint (no state_dict)")
    if "pyannote.audio" in payload:
        return payload, "seg"
    if {"config", "num_classes"} <= set(payload.get("hyper_parameters") or {}):
        return payload, "spk"
    raise DistSpkError(f"{path}: neither a segmentation nor a speaker-encoder checkpoint")


def check_plain(path: Path) -> dict:
    """The contents of a checkpoint file, or of a pyannote model folder's ``pytorch_model.bin``, read with
    ``weights_only=True``: done before pyannote's ``Model.from_pretrained`` unpickles a file we did not write with
    ``weights_only=False`` (a pickle can run code when loaded). One clear error naming the file otherwise."""
    path = Path(path)
    return read_checkpoint(path / "pytorch_model.bin" if path.is_dir() else path)[0]


def check_checkpoint(path: Path, task: str) -> dict:
    """The checkpoint's contents, when it is a readable checkpoint of ``task``; else one clear error."""
    payload, found = read_checkpoint(path)
    if found != task:
        raise DistSpkError(f"{path}: a {TASK_NAMES[found]} checkpoint, but this is a {TASK_NAMES[task]} run")
    return payload


def allow_checkpoint_classes() -> None:
    """Let ``torch.load(weights_only=True)`` read pyannote checkpoints: they pickle the task specifications.

    These plain classes are all a pyannote checkpoint holds beyond tensors and builtins, so resuming or
    fine-tuning never needs the unsafe full unpickler.
    """
    import torch
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from torch.torch_version import TorchVersion  # a str: pyannote 3.x checkpoints record torch's version with it

    torch.serialization.add_safe_globals([Specifications, Problem, Resolution, TorchVersion])
