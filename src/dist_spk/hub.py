"""Model-hub identifiers in configs (no torch or pyannote here: the CLI and ``doctor`` use it before any import)."""

from __future__ import annotations

from pathlib import Path


def is_hub_id(init: str) -> bool:
    """``model.init`` names a model on the hub (``owner/name``), not "random" or a local checkpoint."""
    return (init != "random" and init.count("/") == 1 and not init.startswith((".", "/", "~"))
            and not Path(init).expanduser().exists())


def hub_init(config) -> tuple[str | None, str]:
    """(the hub id a task config starts from, or None; the environment variable holding its token)."""
    model = getattr(config, "model", None)
    init = getattr(model, "init", None)
    return (init if isinstance(init, str) and is_hub_id(init) else None), getattr(model, "hub_token_env", "HF_TOKEN")
