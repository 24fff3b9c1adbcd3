"""Config keys that were renamed, and their old names, which keep working.

``scheduler.*`` was the learning-rate schedule while ``search.scheduler`` was Tune's trial scheduler, next to
``search.search`` (the sampler): now ``lr_schedule.*``, ``search.trial_scheduler`` and ``search.sampler``. An old key
in a config file, a ``--set`` or a search space is read under its new name with a one-line notice on stderr (once per
key and place); saved configs (run directories, checkpoints, experiments being resumed) load silently.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from dist_spk.errors import ConfigError

# old dotted prefix -> new one; a key is renamed when it is the prefix or starts with it and a dot
RENAMED: dict[tuple[str, ...], tuple[str, ...]] = {
    ("scheduler",): ("lr_schedule",),
    ("search", "scheduler"): ("search", "trial_scheduler"),
    ("search", "search"): ("search", "sampler"),
}
_NOTICED: set[tuple[str, str]] = set()


def _notice(old: str, new: str, source: str | None) -> None:
    if source is None or (old, source) in _NOTICED:
        return
    _NOTICED.add((old, source))
    print(f"dist-spk: '{old}' is now '{new}' ({source}); the old name still works", file=sys.stderr, flush=True)


def current_key(dotted: str, *, source: str | None = None) -> str:
    """``dotted`` under its current name (a notice naming ``source`` when it was an old one; None: silent)."""
    parts = tuple(dotted.split("."))
    for old, new in RENAMED.items():
        if parts[: len(old)] == old:
            renamed = ".".join(new + parts[len(old):])
            _notice(dotted, renamed, source)
            return renamed
    return dotted


def current_dict(data: Mapping[str, Any], *, source: str | None = None) -> dict[str, Any]:
    """A copy of a nested config mapping with old section and key names moved to the new ones."""
    data = {key: dict(value) if isinstance(value, Mapping) else value for key, value in data.items()}
    for old, new in RENAMED.items():
        parent = data
        for part in old[:-1]:
            parent = parent.get(part) if isinstance(parent.get(part), dict) else None
            if parent is None:
                break
        if parent is None or old[-1] not in parent:
            continue
        if new[-1] in parent:
            raise ConfigError(f"{source or 'config'}: both '{'.'.join(old)}' (the old name) and '{'.'.join(new)}' "
                              "are set; keep the new one")
        parent[new[-1]] = parent.pop(old[-1])
        _notice(".".join(old), ".".join(new), source)
    return data
