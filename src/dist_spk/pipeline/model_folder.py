"""pyannote model folders: ``FOLDER/pytorch_model.bin``, the layout ``Model.from_pretrained(FOLDER)`` loads.

The file is a Lightning checkpoint as pyannote's own conversion script writes one
(``pyannote/audio/models/embedding/wespeaker/convert.py``): the model's ``state_dict``, the ``hyper_parameters`` that
rebuild it, pyannote's block (``on_save_checkpoint``: versions, architecture, specifications) and
``pytorch-lightning_version``; no optimizer state. pyannote unpickles model files with ``weights_only=False``, so
:func:`check_model_file` reads every file we did not write with ``weights_only=True`` first.
"""

from __future__ import annotations

import os
from pathlib import Path

from dist_spk.errors import DistSpkError
from dist_spk.runs.files import replacing

MODEL_FILE = "pytorch_model.bin"  # pyannote.audio.utils.hf_hub.AssetFileName.Model


def write_model_file(model, path: Path) -> Path:
    """Save the pyannote ``model`` (PyanNet, our speaker encoder, ...) as a slim checkpoint at ``path``, through a
    temporary file and a rename (never half a file)."""
    import lightning
    import torch

    checkpoint = {"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                  "hyper_parameters": dict(model.hparams)}
    model.on_save_checkpoint(checkpoint)
    checkpoint["pytorch-lightning_version"] = lightning.__version__
    with replacing(path) as partial:
        torch.save(checkpoint, partial)
    return path


def write_model_folder(model, folder: Path) -> Path:
    """``folder/pytorch_model.bin`` for ``model``; returns the folder."""
    write_model_file(model, Path(folder) / MODEL_FILE)
    return Path(folder)


def check_model_file(path: Path) -> None:
    """Refuse a model file that holds anything but tensors and pyannote's few plain classes, before pyannote's
    ``Model.from_pretrained`` unpickles it with ``weights_only=False`` (a pickle can run code when loaded)."""
    from dist_spk.runs.checkpoints import check_plain

    payload = check_plain(path)  # unknown globals (code), a truncated zip, garbage: one error naming the file
    if "pyannote.audio" not in payload:
        raise DistSpkError(f"{path}: not a pyannote model checkpoint (no 'pyannote.audio' block)")


def link_model_file(checkpoints: Path, target: str = "best.ckpt") -> None:
    """``checkpoints/pytorch_model.bin`` as a relative link to ``target``: a segmentation run's checkpoints folder
    is then a pyannote model folder of its best epoch (the link follows ``best.ckpt`` as it moves)."""
    link = Path(checkpoints) / MODEL_FILE
    if link.is_symlink() or link.exists():
        return
    partial = link.with_name(f".{MODEL_FILE}.link")
    partial.unlink(missing_ok=True)
    os.symlink(target, partial)
    partial.replace(link)
