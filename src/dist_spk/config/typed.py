"""Strict, typed conversion between plain dicts (YAML, Ray) and dataclass configs.

Written by hand rather than with dacite/OmegaConf because we need two things neither gives:
type-directed coercion of ``--set key=value`` strings (``optim.lr=1e-3`` must become a float, and
YAML 1.1 reads ``1e-3`` as a string), and errors that name the dotted key and list the valid keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, Literal, TypeVar, Union

import yaml

from dist_spk.errors import ConfigError

T = TypeVar("T")

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "~", ""}


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _unknown_key(cls: type, key: str, path: str, source: str) -> ConfigError:
    valid = list(_field_types(cls))
    where = f" in '{path}'" if path else ""
    close = difflib.get_close_matches(str(key), valid, n=1)
    hint = f" Did you mean '{_join(path, close[0])}'?" if close else ""
    return ConfigError(
        f"{source}: unknown key '{_join(path, str(key))}'.{hint} Valid keys{where}: {', '.join(valid)}"
    )


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list[{_type_name(typing.get_args(tp)[0])}]"
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        return f"a mapping of {_type_name(key_tp)} to {_type_name(value_tp)}, e.g. {{\"A100\": 1}}"
    if tp is type(None):
        return "none"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def convert(tp: Any, value: Any, *, key: str, source: str, from_string: bool = False) -> Any:
    """Convert ``value`` to type ``tp`` or raise a :class:`ConfigError` naming ``key``.

    Parameters
    ----------
    tp
        A field type: bool, int, float, str, ``Literal[...]``, ``X | None``, ``list[X]``, ``dict[K, V]`` or a
        dataclass.
    value
        The value from YAML, a Ray config dict, or (``from_string=True``) the command line.
    key
        The dotted key, for the error message.
    source
        Where the value came from (a file name, ``--set``), for the error message.
    from_string
        Parse ``value`` from its command-line text.
    """

    def bad(extra: str = "") -> ConfigError:
        return ConfigError(
            f"{source}: key '{key}' expects {_type_name(tp)}, got {value!r}{extra}"
        )

    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise bad()
        return from_dict(tp, value, path=key, source=source)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (from_string and str(value).strip().lower() in _NONE):
            if type(None) in args:
                return None
            raise bad()
        for arg in (a for a in args if a is not type(None)):
            try:
                return convert(arg, value, key=key, source=source, from_string=from_string)
            except ConfigError:
                continue
        raise bad()
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        raise bad(f"; did you mean {close[0]!r}?" if close else "")
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if from_string and isinstance(value, str):
            text = value.strip()
            parsed = yaml.safe_load(text) if text.startswith("[") else [v for v in text.split(",") if v]
            return [convert(item_tp, v, key=key, source=source, from_string=True) for v in parsed]
        if not isinstance(value, list | tuple):
            raise bad()
        return [convert(item_tp, v, key=key, source=source, from_string=from_string) for v in value]
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        if from_string and isinstance(value, str):
            try:  # JSON or a YAML flow mapping: {"A100": 1}
                value = yaml.safe_load(value) if value.strip() else {}
            except yaml.YAMLError:
                raise bad(" (not a JSON/YAML mapping)") from None
        if not isinstance(value, Mapping):
            raise bad()
        return {convert(key_tp, k, key=f"{key}.{k}", source=source, from_string=True):
                convert(value_tp, v, key=f"{key}.{k}", source=source, from_string=from_string)
                for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if from_string and str(value).strip().lower() in _TRUE | _FALSE:
            return str(value).strip().lower() in _TRUE
        raise bad()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if from_string or isinstance(value, str):
            try:
                return int(str(value).strip())
            except ValueError:
                raise bad() from None
        raise bad()
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # from the command line, or YAML 1.1's "1e-3"
            try:
                number = float(value.strip())
            except ValueError:
                raise bad() from None
        else:
            raise bad()
        if not math.isfinite(number):  # nan and inf pass float() and every comparison-based range check
            raise bad(" (not a finite number)")
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        if from_string:
            return str(value)
        raise bad()
    raise TypeError(f"unsupported config field type {tp!r} for key '{key}'")


def from_dict(cls: type[T], data: Mapping[str, Any], *, path: str = "", source: str = "config") -> T:
    """Build dataclass ``cls`` from a (possibly partial) mapping, strictly.

    Missing keys take the dataclass defaults; unknown keys and wrong types raise
    :class:`ConfigError` naming the dotted key and listing the valid ones.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: '{path or 'the top level'}' must be a mapping, got {data!r}")
    fields = _field_types(cls)
    for key in data:
        if key not in fields:
            raise _unknown_key(cls, key, path, source)
    kwargs = {
        name: convert(tp, data[name], key=_join(path, name), source=source)
        for name, tp in fields.items()
        if name in data
    }
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    """The plain-dict form of a config (what YAML files and Ray workers receive)."""
    return dataclasses.asdict(config)


def field_type(cls: type, dotted: str, *, source: str) -> Any:
    """The declared type of a dotted key such as ``optim.lr``, or a :class:`ConfigError`."""
    tp: Any = cls
    path = ""
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(tp):
            raise ConfigError(f"{source}: '{path}' is a value, not a section; cannot set '{dotted}'")
        fields = _field_types(tp)
        if part not in fields:
            raise _unknown_key(tp, part, path, source)
        tp = fields[part]
        path = _join(path, part)
    return tp


def apply_override(cls: type, data: dict[str, Any], override: str) -> None:
    """Apply one ``dotted.key=value`` override to the plain-dict form of a ``cls`` config, in place."""
    source = f"--set {override}"
    if "=" not in override:
        raise ConfigError(f"{source}: expected KEY=VALUE, e.g. optim.lr=1e-3")
    dotted, text = (s.strip() for s in override.split("=", 1))
    tp = field_type(cls, dotted, source=source)
    if dataclasses.is_dataclass(tp):
        raise ConfigError(f"{source}: '{dotted}' is a section; set one of its keys, e.g. '{dotted}.<key>=...'")
    value = convert(tp, text, key=dotted, source=source, from_string=True)
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``update`` merged in, section by section."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def iter_problems(config: Any, path: str = "") -> Iterator[str]:
    """Value problems of a config and its sections, each as ``'dotted.key: message'``.

    A section reports its own problems through a ``problems()`` method yielding ``(key, message)``.
    """
    check = getattr(config, "problems", None)
    if check is not None:
        for key, message in check():
            yield f"{_join(path, key)}: {message}"
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            yield from iter_problems(value, _join(path, f.name))
