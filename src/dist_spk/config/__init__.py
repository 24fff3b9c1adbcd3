"""Typed, validated configs: presets, YAML files and ``--set`` overrides, resolved once at the edge.

Resolution order: preset < YAML file < ``--set`` overrides. The result is validated (types, then
values) and written as ``config.yaml`` into every run directory. Ray workers receive the plain-dict
form and turn it back with :func:`config_from_dict` on their first line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from dist_spk.config import registry
from dist_spk.config.renames import current_dict, current_key
from dist_spk.config.tasks import SegConfig, SpkConfig
from dist_spk.config.typed import apply_override, deep_merge, from_dict, iter_problems, to_dict
from dist_spk.errors import ConfigError

# read from the task registry (config/registry.py): task -> config class, task -> preset name -> a fresh config
TASKS: dict[str, type] = {name: spec.config for name, spec in registry.TASKS.items()}
PRESETS: dict[str, dict[str, Callable[[], Any]]] = {name: dict(spec.presets) for name, spec in registry.TASKS.items()}

__all__ = [
    "PRESETS",
    "TASKS",
    "SegConfig",
    "SpkConfig",
    "config_from_dict",
    "load_config",
    "read_config_file",
    "save_config",
    "to_dict",
]


def _task_class(task: str) -> type:
    return registry.task_spec(task).config  # an unknown task: one error listing the valid ones


def preset(task: str, name: str) -> Any:
    """A fresh config of ``task`` from preset ``name``."""
    presets = PRESETS.get(task, {})
    if name not in presets:
        _task_class(task)
        raise ConfigError(f"unknown preset '{name}' for task '{task}'; valid presets: {', '.join(presets)}")
    return presets[name]()


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML config file, or a :class:`ConfigError` naming the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file ({err.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML ({getattr(err, 'problem', err)})") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: must hold a mapping of config sections, got {type(data).__name__}")
    return dict(data)


def validate(config: Any) -> Any:
    """Raise one :class:`ConfigError` listing every value problem of ``config``; return it otherwise."""
    problems = list(iter_problems(config))
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
    return config


def load_config(
    task: str,
    *,
    preset_name: str = "local",
    file: str | Path | None = None,
    overrides: Iterable[str] = (),
) -> Any:
    """Resolve a task config from a preset, an optional YAML file and ``--set`` overrides.

    Parameters
    ----------
    task
        ``seg`` or ``spk``.
    preset_name
        A key of ``PRESETS[task]``.
    file
        A YAML file with any subset of the config's sections and keys.
    overrides
        ``dotted.key=value`` strings, coerced to each key's declared type.

    Raises
    ------
    ConfigError
        Naming the file or override and the key at fault, listing the valid keys.
    """
    cls = _task_class(task)
    data = to_dict(preset(task, preset_name))
    if file is not None:
        update = current_dict(read_config_file(file), source=str(file))  # old key names still work
        from_dict(cls, update, source=str(file))  # validates keys and types against the file's name
        data = deep_merge(data, update)
    for override in overrides:
        dotted, equals, value = override.partition("=")
        if equals:
            override = f"{current_key(dotted.strip(), source=f'--set {override}')}={value}"
        apply_override(cls, data, override)
    return validate(from_dict(cls, data))


def config_from_dict(task: str, data: Mapping[str, Any]) -> Any:
    """Rebuild a validated config from its plain-dict form (what Ray hands a worker; a saved config, whose old key
    names are read silently)."""
    return validate(from_dict(_task_class(task), current_dict(data)))


def dump_config(config: Any) -> str:
    """The YAML text of a config, sections in declaration order."""
    return yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=False)


def save_config(config: Any, run_dir: str | Path) -> Path:
    """Write the resolved config to ``run_dir/config.yaml`` and return its path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "config.yaml"
    path.write_text(dump_config(config))
    return path
