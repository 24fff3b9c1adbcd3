"""Credentials belong to the cluster, never to a job: a submitted job that carries one in its metadata is refused.

Ray stores a job's metadata (``ray job submit --metadata-json``) with the job and shows it to anyone who can reach the
cluster: ``ray job list``, the dashboard's Jobs page and ``/api/jobs/`` (ray-project/ray#34514, #21956); it is also on
the submitting machine's command line (``ps``). A runtime env is no better: Ray writes every runtime env, variables
included, to ``runtime_env_agent.log`` on each node (ray-project/ray#39502).

Where credentials come from instead, set once by the cluster's owner (README, "Secrets"): on Kubernetes, a Secret
mounted into the head pod's environment (``k8s/``); with ``ray up``, the head node's own logins: ``wandb login``
(its netrc entry) and ``hf auth login`` (huggingface_hub's token file), both 0600 files in the head's home folder,
which W&B and huggingface_hub read by themselves, or the head's environment. The job's entrypoint runs on the head, so
it finds them; workers never need them (the driver logs to W&B and downloads gated checkpoints once).
"""

from __future__ import annotations

import json
import os

from dist_spk.errors import DistSpkError

JOB_CONFIG_VAR = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # how Ray's job supervisor passes metadata to the entrypoint
# metadata keys earlier versions of dist_spk read credentials from -> the variable each was for
SECRETS = {"wandb_api_key": "WANDB_API_KEY", "hf_token": "HF_TOKEN"}
_CREDENTIAL_WORDS = ("key", "token", "secret", "password", "credential")


def refuse_submitted_secrets() -> None:
    """In a ``ray job submit`` entrypoint: stop, before anything starts, when the job's metadata holds what looks like
    a credential (one clear error naming the key and where credentials go)."""
    try:
        metadata = json.loads(os.environ.get(JOB_CONFIG_VAR) or "{}").get("metadata") or {}
    except (json.JSONDecodeError, AttributeError):
        return
    found = sorted(key for key, value in metadata.items()
                   if value and (key in SECRETS or any(word in key.lower() for word in _CREDENTIAL_WORDS)))
    if found:
        raise DistSpkError(
            f"this job's metadata holds {', '.join(repr(k) for k in found)}: Ray shows job metadata to everyone who "
            "can reach the cluster (ray job list, the dashboard), so dist_spk does not take credentials from it. "
            "Stop the job (ray job delete), and set credentials once on the cluster instead: a Kubernetes Secret in "
            "the head pod's environment (k8s/), or on the head node `wandb login` and `hf auth login` (README, "
            "'Secrets'). Consider the key exposed: rotate it.")
