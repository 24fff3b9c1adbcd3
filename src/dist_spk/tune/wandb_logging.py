"""W&B for searches: every trial a run grouped under its experiment; the API key never written anywhere.

The one adapter between dist_spk and W&B (through Ray's ``WandbLoggerCallback``):

- without ``WANDB_API_KEY`` the runs are written offline under ``EXP/wandb`` (``wandb sync`` later);
- with it they go online, and the key travels only in memory. Ray's callback hands the key to its
  logging actors as a runtime-env variable, and Ray's runtime-env agent writes every runtime env it
  creates to ``runtime_env_agent.log`` (ray-project/ray#39502): :class:`KeyInMemoryWandbCallback` hands it
  to ``wandb.init`` as a setting instead, an actor argument.
- a job submitted with ``ray job submit`` gets the key from its submitter as job metadata
  (``--metadata-json '{"wandb_api_key": ...}'``), which Ray keeps in memory and writes to no log:
  :mod:`dist_spk.launch.secrets` (runtime-env variables would be logged, as above).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ray.air.integrations.wandb import WandbLoggerCallback

from dist_spk.launch.secrets import JOB_CONFIG_VAR, SECRETS, adopt_submitted_secrets  # noqa: F401 (re-exported)

METADATA_KEY = "wandb_api_key"  # `ray job submit --metadata-json '{"wandb_api_key": "..."}'`
KEY_VAR = SECRETS[METADATA_KEY]  # WANDB_API_KEY


def adopt_submitted_key() -> bool:
    """In a ``ray job submit`` entrypoint: adopt the job's secrets (:mod:`dist_spk.launch.secrets`); whether the
    W&B key was among them. Kept for scripts written against earlier versions."""
    return KEY_VAR in adopt_submitted_secrets()


class KeyInMemoryWandbCallback(WandbLoggerCallback):
    """Ray's callback, except that the logging actors get the key as a ``wandb.Settings`` argument."""

    def _start_logging_actor(self, trial, exclude_results, **wandb_init_kwargs):
        key = os.environ.pop(KEY_VAR, None)  # Ray copies it into the actors' runtime env when present
        try:
            super()._start_logging_actor(trial, exclude_results, **wandb_init_kwargs)
        finally:
            if key is not None:
                os.environ[KEY_VAR] = key


def reachable(url: str, *, timeout: float = 5.0) -> bool:
    """Whether a TCP connection to the W&B server opens within ``timeout`` seconds."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def wandb_callback(project: str, exp_dir: Path) -> tuple[WandbLoggerCallback, bool]:
    """(the callback, offline?) for a search writing to ``exp_dir``.

    With a key but no route to the server (``WANDB_BASE_URL``, default api.wandb.ai), the runs are
    written offline instead: W&B would otherwise retry for minutes per trial, and a search must
    never wait on its dashboard.
    """
    offline = not os.environ.get(KEY_VAR) or os.environ.get("WANDB_MODE") == "offline"
    server = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    if not offline and not reachable(server):
        print(f"[tune] W&B server {server} is unreachable: logging offline to {exp_dir / 'wandb'} instead",
              flush=True)
        offline = True
    (exp_dir / "wandb").mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"dir": str(exp_dir)}
    if offline:
        kwargs["mode"] = "offline"
        os.environ["WANDB_MODE"] = "offline"  # Ray's callback asks for an API key unless this says offline
    else:
        import wandb

        kwargs["settings"] = wandb.Settings(api_key=os.environ[KEY_VAR])
    callback = KeyInMemoryWandbCallback(project=project, group=exp_dir.name, log_config=True,
                                        excludes=["checkpoint_path", "wall_time"], **kwargs)
    return callback, offline
