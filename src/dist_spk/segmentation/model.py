"""PyanNet, from random initialisation, a local checkpoint or a model-hub id; SincNet freezing."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import lightning
from pyannote.audio import Model
from pyannote.audio.models.segmentation import PyanNet

from dist_spk.config.tasks import SegModelConfig
from dist_spk.errors import ConfigError, DistSpkError
from dist_spk.hub import is_hub_id
from dist_spk.runs.checkpoints import check_plain


def load_pretrained(init: str, *, token_env: str = "HF_TOKEN") -> Model:
    """A pyannote model from a local checkpoint (file or folder) or a hub id such as ``pyannote/segmentation-3.0``.

    The hub token is read from the environment variable ``token_env`` and never written anywhere.

    Raises
    ------
    DistSpkError
        Naming the checkpoint and what went wrong (unreadable, not a pyannote checkpoint, hub unreachable).
    """
    path = Path(init).expanduser()
    if path.exists():
        check_plain(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = Model.from_pretrained(path, map_location="cpu", strict=False)
        except Exception as err:  # corrupt files raise pickle, zip or key errors
            raise DistSpkError(f"{path}: not a readable pyannote checkpoint ({type(err).__name__}: {err})") from None
    else:
        if not is_hub_id(init):
            raise ConfigError(f"model.init: {init!r} is neither an existing checkpoint path nor a hub id "
                              "like 'pyannote/segmentation-3.0'")
        token = os.environ.get(token_env) or None
        try:
            model = Model.from_pretrained(init, token=token, map_location="cpu", strict=False)
        except Exception as err:  # network, auth and gating errors come from huggingface_hub
            hint = "" if token else f" ({token_env} is not set; gated models need a token)"
            raise DistSpkError(f"model.init: cannot load {init!r} from the model hub: {type(err).__name__}: "
                               f"{str(err).splitlines()[0] if str(err) else ''}{hint}. Pass a local checkpoint "
                               "path instead if this machine cannot reach the hub.") from None
    if model is None:
        raise DistSpkError(f"model.init: {init!r} did not yield a model")
    return model


def fetch_hub_checkpoint(init: str, *, token_env: str, cache_dir: Path) -> Path:
    """Download a hub model's checkpoint once into ``cache_dir`` (shared storage) and return its local path.

    Run by the driver (``dist-spk train`` or the search's job on the head node), the only process that needs the hub
    token (``token_env``, or huggingface_hub's own login on that node): workers then load the local file and never
    need the token, which so never reaches a runtime env, a log or a worker.
    """
    from pyannote.audio.utils.hf_hub import AssetFileName, download_from_hf_hub

    token = os.environ.get(token_env) or None
    try:
        path = download_from_hf_hub(init, AssetFileName.Model, cache_dir=cache_dir, token=token)
    except Exception as err:  # network, auth and gating errors come from huggingface_hub
        path, reason = None, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    else:
        reason = "the hub gave no checkpoint"
    if path is None:
        hint = "" if token else f" ({token_env} is not set; gated models need a token)"
        raise DistSpkError(f"model.init: cannot download {init!r} from the model hub: {reason}{hint}. Pass a "
                           "local checkpoint path instead if this machine cannot reach the hub.")
    check_plain(Path(path))
    return Path(path)


def build_model(config: SegModelConfig, task, *, local_init: str | None = None) -> Model:
    """PyanNet for ``task``: random (with the config's sizes) or loaded from ``config.init``.

    ``local_init`` is ``config.init`` already downloaded by the driver (a hub model's checkpoint on shared
    storage). A loaded model keeps its own architecture; the size keys of ``config`` then do not apply.
    """
    if local_init:
        model = load_pretrained(local_init)
        model.task = task
        return model
    if config.init == "random":
        return PyanNet(
            sincnet={"stride": config.sincnet_stride},
            lstm={"hidden_size": config.lstm_hidden_size, "num_layers": config.lstm_num_layers,
                  "bidirectional": True, "monolithic": True, "dropout": config.dropout},
            linear={"hidden_size": config.linear_hidden_size, "num_layers": config.linear_num_layers},
            task=task,
        )
    model = load_pretrained(config.init, token_env=config.hub_token_env)
    model.task = task
    return model


class FreezeSincNet(lightning.Callback):
    """Keep the SincNet front end fixed for the first ``epochs`` epochs.

    Its gradients are dropped before each optimizer step instead of toggling ``requires_grad``:
    DDP registers trainable parameters once, at wrap time, so toggling would desynchronise ranks.
    Optimizers skip parameters whose ``grad`` is None (no update, no weight decay, no moments).
    """

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if trainer.current_epoch < self.epochs:
            for parameter in pl_module.sincnet.parameters():
                parameter.grad = None
