"""Secrets a submitted job needs (the W&B key, the model hub token), taken from its metadata, never from files.

``ray job submit --metadata-json '{"wandb_api_key": "...", "hf_token": "..."}'`` hands them to the job: Ray keeps
job metadata in memory and passes it to the entrypoint in one environment variable, and writes it to no log. A
runtime env would be logged: Ray writes every runtime env it creates, variables included, to
``runtime_env_agent.log`` on each node (ray-project/ray#39502). The entrypoint (``ray_jobs/*.py``) adopts the
secrets into its own process only; from there the W&B key goes to the logging actors as an argument
(:mod:`dist_spk.tune.wandb_logging`) and the hub token is used by the driver alone, which downloads the gated
checkpoint once (:func:`dist_spk.segmentation.model.fetch_hub_checkpoint`).
"""

from __future__ import annotations

import json
import os

JOB_CONFIG_VAR = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # how Ray's job supervisor passes metadata to the entrypoint
# job metadata key -> the environment variable it becomes in the entrypoint's process
SECRETS = {"wandb_api_key": "WANDB_API_KEY", "hf_token": "HF_TOKEN"}


def adopt_submitted_secrets() -> list[str]:
    """In a ``ray job submit`` entrypoint: set each secret of the job's metadata in this process (unless the
    variable is already set); return the variables it set."""
    try:
        metadata = json.loads(os.environ.get(JOB_CONFIG_VAR) or "{}").get("metadata") or {}
    except (json.JSONDecodeError, AttributeError):
        return []
    adopted = []
    for key, variable in SECRETS.items():
        value = metadata.get(key)
        if value and not os.environ.get(variable):
            os.environ[variable] = value
            adopted.append(variable)
    return adopted
