"""Search spaces in YAML: W&B sweep syntax or Tune style, keyed by dotted config keys.

W&B sweep syntax (what ``wandb sweep`` reads; ``dist-spk tune export-sweep`` writes it back)::

    parameters:
      optim.lr: {distribution: log_uniform_values, min: 1.0e-4, max: 3.0e-3}
      optim.name: {values: [adam, adamw, radam, nadam]}
      trainer.epochs: {value: 30}
      head.margin: {distribution: q_uniform, min: 0.1, max: 0.4, q: 0.05}

Tune style::

    optim.lr: {loguniform: [1.0e-4, 3.0e-3]}
    optim.name: {choice: [adam, adamw]}
    data.batch_size: {grid: [32, 64]}

Variant lists (the seed teams' studies: named combinations, not a Cartesian product)::

    variants:
      - {name: adam, optim.name: adam}
      - {name: nadam_cosine, optim.name: nadam, lr_schedule.name: cosine}
    parameters:                      # optional: sampled for every variant
      optim.lr: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-3}

Every variant runs (``num_samples`` times, crossed with the sampled ``parameters``): the trial's config is the
variant's keys set on the base config; its name is the ``variant`` column of ``summary.csv``.

Every key must be a key of the task's config and every fixed value must have its type: a typo is
an error naming the file and the key before any trial starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from dist_spk.config import TASKS, read_config_file
from dist_spk.config.renames import current_key
from dist_spk.config.typed import convert, field_type, iter_problems
from dist_spk.errors import ConfigError

# W&B distribution -> (our kind, its argument names)
WANDB_DISTRIBUTIONS = {
    "constant": ("constant", ("value",)),
    "categorical": ("choice", ("values",)),
    "int_uniform": ("randint", ("min", "max")),
    "uniform": ("uniform", ("min", "max")),
    "q_uniform": ("quniform", ("min", "max", "q")),
    "log_uniform_values": ("loguniform", ("min", "max")),
    "q_log_uniform_values": ("qloguniform", ("min", "max", "q")),
    "log_uniform": ("loguniform_exp", ("min", "max")),  # bounds are natural-log exponents
    "normal": ("normal", ("mu", "sigma")),
    "q_normal": ("qnormal", ("mu", "sigma", "q")),
    # log-uniform is its own inverse's law (ln X uniform <=> ln 1/X uniform): the same distribution on [min, max]
    "inv_log_uniform_values": ("loguniform", ("min", "max")),
}
WANDB_DEFAULTS = {"q": 1.0, "mu": 0.0, "sigma": 1.0}  # what W&B's engine assumes when a key is left out
# W&B distributions Tune cannot sample reproducibly (no seeded domain): refused by name
WANDB_UNSUPPORTED = ("log_normal", "q_log_normal", "beta", "q_beta", "inv_log_uniform", "q_log_uniform")
TUNE_STYLE = {"choice", "grid", "uniform", "quniform", "loguniform", "qloguniform", "randint", "normal", "qnormal"}
SPEC_KEYS = {"value", "values", "distribution", "min", "max", "probabilities"} | TUNE_STYLE
VARIANT = "variant"  # the searched "key" of a variant list: the variant's name in trial configs and summaries


@dataclass(frozen=True)
class Param:
    """One searched key: a kind (``constant choice grid uniform quniform loguniform qloguniform randint
    normal qnormal``, or ``variant``: args (names, each variant's dotted keys)) and its arguments. ``randint``
    bounds are inclusive, as in W&B."""

    key: str
    kind: str
    args: tuple

    def to_tune(self):
        from ray import tune

        a = self.args
        makers = {
            "constant": lambda: a[0],
            "choice": lambda: tune.choice(list(a[0])),
            "grid": lambda: tune.grid_search(list(a[0])),
            "uniform": lambda: tune.uniform(a[0], a[1]),
            "quniform": lambda: tune.quniform(a[0], a[1], a[2]),
            "loguniform": lambda: tune.loguniform(a[0], a[1]),
            "qloguniform": lambda: tune.qloguniform(a[0], a[1], a[2]),
            "randint": lambda: tune.randint(a[0], a[1] + 1),  # Tune's upper bound is exclusive
            "normal": lambda: tune.randn(a[0], a[1]),
            "qnormal": lambda: tune.qrandn(a[0], a[1], a[2]),
            "weighted": lambda: tune.choice(_repeat_by_weight(a[0], a[1])),
            # every variant, as a mapping, so the trial's config carries its keys (expanded by trial_config)
            "variant": lambda: tune.grid_search([{"name": n, **keys} for n, keys in zip(*a, strict=True)]),
        }
        return makers[self.kind]()

    def trial_value(self, config: Mapping[str, Any]) -> Any:
        """This key's value in a trial's config (a variant: its name)."""
        value = config.get(self.key)
        return value.get("name") if self.kind == "variant" and isinstance(value, Mapping) else value

    def to_wandb(self) -> dict[str, Any]:
        a = self.args
        if self.kind == "constant":
            return {"value": a[0]}
        if self.kind in ("choice", "grid", "variant"):  # a variant list as W&B sees it: its names
            return {"values": list(a[0])}
        if self.kind == "weighted":
            return {"values": list(a[0]), "probabilities": list(a[1])}
        names = {"uniform": ("uniform", "min", "max"), "quniform": ("q_uniform", "min", "max", "q"),
                 "loguniform": ("log_uniform_values", "min", "max"),
                 "qloguniform": ("q_log_uniform_values", "min", "max", "q"), "randint": ("int_uniform", "min", "max"),
                 "normal": ("normal", "mu", "sigma"), "qnormal": ("q_normal", "mu", "sigma", "q")}[self.kind]
        return {"distribution": names[0], **dict(zip(names[1:], a, strict=True))}


def _repeat_by_weight(values: tuple, probabilities: tuple) -> list:
    """W&B's categorical ``probabilities`` as a uniform choice over repeated values (Tune's choice is uniform and
    seeded; a weighted sampler of our own would not be): [a, b] with [0.25, 0.75] -> [a, b, b, b]."""
    weights = [Fraction(p).limit_denominator(100) for p in probabilities]
    scale = math.lcm(*(w.denominator for w in weights))
    return [v for v, w in zip(values, weights, strict=True) for _ in range(int(w * scale))]


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sections to dotted keys; a mapping holding spec keys is a leaf."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and not (set(value) & SPEC_KEYS):
            flat |= _flatten(value, dotted)
        else:
            flat[dotted] = value
    return flat


def _current_keys(flat: dict[str, Any], source: str) -> dict[str, Any]:
    """Dotted keys under their current names (an old name still works, with a notice: config/renames.py)."""
    current: dict[str, Any] = {}
    given: dict[str, str] = {}
    for key, value in flat.items():
        renamed = current_key(key, source=source)
        if renamed in current:
            raise ConfigError(f"{source}: '{given[renamed]}' and '{key}' are the same key (its old and new name); "
                              "keep one")
        current[renamed], given[renamed] = value, key
    return current


def _parse(key: str, spec: Any, source: str) -> Param:
    where = f"{source}: key '{key}'"
    if not isinstance(spec, Mapping):
        return Param(key, "constant", (spec,))  # a bare value
    if "value" in spec:
        return Param(key, "constant", (spec["value"],))
    if "values" in spec and "distribution" not in spec:
        if "probabilities" in spec:
            return _weighted(key, spec, where)
        return Param(key, "choice", (tuple(spec["values"]),))
    if "distribution" not in spec and {"min", "max"} <= set(spec) and not set(spec) & TUNE_STYLE:
        # W&B's inference: integer bounds sample integers, others floats
        ints = all(isinstance(spec[n], int) and not isinstance(spec[n], bool) for n in ("min", "max"))
        spec = {**spec, "distribution": "int_uniform" if ints else "uniform"}
    if "distribution" in spec:
        name = spec["distribution"]
        if name in WANDB_UNSUPPORTED:
            raise ConfigError(f"{where}: distribution {name!r} is W&B's, but dist-spk cannot sample it with a seeded "
                              "Tune domain; use uniform, log_uniform_values, normal or their q_ forms")
        if name not in WANDB_DISTRIBUTIONS:
            raise ConfigError(f"{where}: unknown distribution {name!r}; valid: {', '.join(WANDB_DISTRIBUTIONS)}")
        kind, names = WANDB_DISTRIBUTIONS[name]
        spec = {**{n: WANDB_DEFAULTS[n] for n in names if n in WANDB_DEFAULTS}, **spec}
        missing = [n for n in names if n not in spec]
        if missing:
            raise ConfigError(f"{where}: distribution {name} needs {', '.join(names)}; missing {', '.join(missing)}")
        args = tuple(tuple(spec[n]) if n == "values" else spec[n] for n in names)
        if kind == "loguniform_exp":
            return Param(key, "loguniform", (math.exp(args[0]), math.exp(args[1])))
        return Param(key, kind, args)
    kinds = set(spec) & TUNE_STYLE
    if len(kinds) != 1 or len(spec) != 1:
        styles = ", ".join(sorted(TUNE_STYLE))
        raise ConfigError(f"{where}: expected one of value, values, distribution (W&B) or {styles} (Tune style); "
                          f"got {', '.join(map(str, spec))}")
    (kind,) = kinds
    args = spec[kind]
    if kind in ("choice", "grid"):
        return Param(key, kind, (tuple(args),))
    return Param(key, kind, tuple(args) if isinstance(args, list | tuple) else (args,))


def _weighted(key: str, spec: Mapping[str, Any], where: str) -> Param:
    values, probabilities = tuple(spec["values"]), tuple(spec["probabilities"])
    if len(values) != len(probabilities) or not all(isinstance(p, int | float) and p >= 0 for p in probabilities):
        raise ConfigError(f"{where}: probabilities must be one number >= 0 per value")
    if abs(sum(probabilities) - 1.0) > 1e-6:
        raise ConfigError(f"{where}: probabilities must sum to 1, got {sum(probabilities):g}")
    if len(_repeat_by_weight(values, probabilities)) > 1000:
        raise ConfigError(f"{where}: probabilities need a resolution of 1/100 or coarser")
    return Param(key, "weighted", (values, probabilities))


def _check(param: Param, cls: type, source: str) -> Param:
    """The key exists in the config; fixed values have its type; bounds are ordered."""
    tp = field_type(cls, param.key, source=source)
    where = f"{source}: key '{param.key}'"
    if param.kind == "constant":
        return Param(param.key, "constant", (convert(tp, param.args[0], key=param.key, source=source),))
    if param.kind in ("choice", "grid", "weighted"):
        if not param.args[0]:
            raise ConfigError(f"{where}: an empty list of values")
        values = tuple(convert(tp, v, key=param.key, source=source) for v in param.args[0])
        return Param(param.key, param.kind, (values, *param.args[1:]))
    expected = {"normal": 2, "qnormal": 3, "quniform": 3, "qloguniform": 3}.get(param.kind, 2)
    if len(param.args) != expected or not all(isinstance(a, int | float) for a in param.args):
        raise ConfigError(f"{where}: {param.kind} takes {expected} numbers, got {list(param.args)}")
    if param.kind not in ("normal", "qnormal") and param.args[0] >= param.args[1]:
        raise ConfigError(f"{where}: min must be below max, got {list(param.args)}")
    if param.kind in ("loguniform", "qloguniform") and param.args[0] <= 0:
        raise ConfigError(f"{where}: a log-uniform range must be positive, got {list(param.args)}")
    if param.kind == "randint" and tp is not int:
        raise ConfigError(f"{where}: int_uniform/randint needs an int key")
    if not all(math.isfinite(a) for a in param.args):
        raise ConfigError(f"{where}: {param.kind} takes finite numbers, got {list(param.args)}")
    if param.kind in ("quniform", "qloguniform", "qnormal") and param.args[2] <= 0:
        raise ConfigError(f"{where}: q must be > 0, got {param.args[2]}")
    if param.kind in ("normal", "qnormal") and param.args[1] <= 0:
        raise ConfigError(f"{where}: sigma must be > 0, got {param.args[1]}")
    return param


def check_values(config: Any, params: list[Param], *, source: str = "space") -> None:
    """Every fixed value and both ends of every range pass the config's own checks for their key (e.g. optim.lr > 0),
    with the base ``config`` around them: a trial must never be the first to find a value refused."""
    import copy

    for param in params:
        if param.kind in ("choice", "grid", "weighted"):
            values = list(param.args[0])
        elif param.kind in ("uniform", "quniform", "loguniform", "qloguniform", "randint"):
            values = list(param.args[:2])
        else:  # constants were converted at parsing; normals have no ends; variants are checked as they are made
            continue
        for value in values:
            trial = copy.deepcopy(config)
            *sections, name = param.key.split(".")
            section = trial
            for part in sections:
                section = getattr(section, part)
            setattr(section, name, type(getattr(section, name))(value) if isinstance(value, int | float) and
                    not isinstance(value, bool) else value)
            problems = [p for p in iter_problems(trial) if p.startswith(f"{param.key}:")]
            if problems:
                raise ConfigError(f"{source}: key '{param.key}' reaches {value!r}, which the config refuses "
                                  f"({problems[0]})")


def parse_space(document: Mapping[str, Any], task: str, *, source: str = "space") -> list[Param]:
    """Validated parameters of a search-space document (either syntax) for ``task``."""
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
    variants = document.get("variants")
    if variants is not None:
        tree = document.get("parameters") or {}
    else:
        tree = document.get("parameters", document) if "parameters" in document else document
    if not isinstance(tree, Mapping) or (not tree and variants is None):
        raise ConfigError(f"{source}: no parameters to search")
    params = [_check(_parse(key, spec, source), TASKS[task], source)
              for key, spec in _current_keys(_flatten(tree), source).items()]
    if variants is not None:
        params.append(_variants(variants, TASKS[task], source, sampled={p.key for p in params}))
    return params


def _variants(variants: Any, cls: type, source: str, *, sampled: set[str]) -> Param:
    """``variants:``, checked: a list of mappings, each a unique ``name`` plus config keys of the right type."""
    if not isinstance(variants, list) or not variants:
        raise ConfigError(f"{source}: variants must be a non-empty list of mappings (name plus config keys)")
    names, keys = [], []
    for index, variant in enumerate(variants, 1):
        where = f"{source}: variant {index}"
        if not isinstance(variant, Mapping) or not isinstance(variant.get("name"), str) or not variant["name"]:
            raise ConfigError(f"{where}: needs a name, e.g. {{name: nadam_cosine, optim.name: nadam}}")
        name = variant["name"]
        if name in names:
            raise ConfigError(f"{where}: the name {name!r} is used twice")
        settings = _current_keys(_flatten({k: v for k, v in variant.items() if k != "name"}), source)
        clash = sorted(set(settings) & sampled)
        if clash:
            raise ConfigError(f"{where} ({name}): {', '.join(clash)} is also in parameters; set a key in one place")
        checked = {key: _check(Param(key, "constant", (value,)), cls, f"{source}: variant {name!r}").args[0]
                   for key, value in settings.items()}
        names.append(name)
        keys.append(checked)
    return Param(VARIANT, "variant", (tuple(names), tuple(keys)))


def variant_list(params: list[Param]) -> list[dict[str, Any]]:
    """The ``variants:`` list of a space (empty without one), as a space file writes it."""
    return [{"name": name, **keys} for p in params if p.kind == "variant" for name, keys in zip(*p.args, strict=True)]


def load_space(path: str | Path, task: str) -> list[Param]:
    return parse_space(read_config_file(path), task, source=str(path))


def sweep_overrides(document: Mapping[str, Any], *, objective: str, source: str = "space") -> list[str]:
    """What a W&B sweep file's ``method``, ``metric`` and ``early_terminate`` mean for the search, as config
    overrides: ``bayes`` is Optuna's TPE, ``random`` and ``grid`` Tune's seeded sampler (a grid enumerates
    every ``values`` list), ``early_terminate: hyperband`` is ASHA with the same rungs (``min_iter`` epochs
    first, one in ``eta`` promoted). Anything else is one error naming the key."""
    overrides = []
    method = document.get("method")
    if method is not None:
        if method not in SWEEP_METHODS:
            raise ConfigError(f"{source}: method {method!r}: W&B sweeps know {', '.join(SWEEP_METHODS)}")
        overrides.append(f"search.sampler={'optuna' if method == 'bayes' else 'random'}")
    metric = document.get("metric")
    if metric is not None:
        name = metric.get("name") if isinstance(metric, Mapping) else None
        goal = metric.get("goal", "minimize") if isinstance(metric, Mapping) else None
        if name != objective or goal != "minimize":
            raise ConfigError(f"{source}: metric {dict(metric) if isinstance(metric, Mapping) else metric!r}: this "
                              f"task's searches rank trials by {objective!r}, goal minimize (other objectives are "
                              "not supported yet)")
    stop = document.get("early_terminate")
    if stop is not None:
        if not isinstance(stop, Mapping) or stop.get("type") != "hyperband":
            raise ConfigError(f"{source}: early_terminate: only type hyperband is supported (run as ASHA)")
        unknown = set(stop) - {"type", "min_iter", "eta", "strict"}
        if unknown or "min_iter" not in stop:
            raise ConfigError(f"{source}: early_terminate: give min_iter (and eta); "
                              f"{', '.join(sorted(unknown)) or 'max_iter/s'} not supported (ASHA's rungs start at "
                              "min_iter epochs)")
        overrides += ["search.trial_scheduler=asha", f"search.grace_period={stop['min_iter']}",
                      f"search.reduction_factor={stop.get('eta', 3)}"]
    return overrides


def grid_of(params: list[Param], document: Mapping[str, Any]) -> list[Param]:
    """``method: grid``: every ``values`` list is enumerated (W&B's grid), not sampled."""
    if document.get("method") != "grid":
        return params
    check_sweep_method(params, "grid")
    gridded = []
    for p in params:
        if p.kind in ("choice", "weighted"):
            p = Param(p.key, "grid", p.args[:1])
        elif p.kind == "randint":
            p = Param(p.key, "grid", (tuple(range(p.args[0], p.args[1] + 1)),))
        elif p.kind == "quniform":
            low, high, q = p.args
            points = int((high - low) / q + 1e-9) + 1
            if points > MAX_GRID_POINTS:
                raise ConfigError(f"key '{p.key}': a grid of {points:,} points (q {q:g} over [{low:g}, {high:g}]); "
                                  f"at most {MAX_GRID_POINTS:,}")
            p = Param(p.key, "grid", (tuple(round(low + i * q, 10) for i in range(points)),))
        gridded.append(p)
    combinations = math.prod(len(p.args[0]) for p in gridded if p.kind == "grid")
    if combinations > MAX_GRID_POINTS:
        raise ConfigError(f"method grid: {combinations:,} combinations, each a trial; at most {MAX_GRID_POINTS:,} "
                          "(use a sampled search: method random or bayes)")
    return gridded


MAX_GRID_POINTS = 10_000  # trials a grid search may expand to


def default_space_path(task: str) -> Path:
    """The shipped space of a task (the seed teams' experiments)."""
    return Path(__file__).parent / "spaces" / f"{task}.yaml"


def space_path(space: str | Path | None, task: str) -> Path:
    """``--space``: a file, or the name of a shipped space (``seed_segmentation_variants``); none: the task's."""
    if space is None:
        return default_space_path(task)
    shipped = Path(__file__).parent / "spaces" / f"{space}.yaml"
    if not Path(space).exists() and shipped.is_file():
        return shipped
    return Path(space)


SAMPLED_KINDS = ("choice", "weighted", "uniform", "quniform", "loguniform", "qloguniform", "randint", "normal",
                 "qnormal")


def samples_anything(params: list[Param]) -> bool:
    """Whether a trial of this space draws any value at random (else every trial is one of a fixed set)."""
    return any(p.kind in SAMPLED_KINDS for p in params)


def with_repeats(params: list[Param], *, repeats: int, seed: int) -> list[Param]:
    """A space that samples nothing, with ``repeats`` runs of each combination, run k seeded ``seed + k`` (a grid
    over ``trainer.seed``, so summary.csv records it): repeats measure variance instead of duplicating a run."""
    if repeats <= 1 or samples_anything(params):
        return params
    return [*(p for p in params if p.key != "trainer.seed"),
            Param("trainer.seed", "grid", (tuple(seed + k for k in range(repeats)),))]


def to_param_space(params: list[Param]) -> dict[str, Any]:
    """Tune's ``param_space``: dotted key -> domain (or fixed value)."""
    return {p.key: p.to_tune() for p in params}


SWEEP_METHODS = ("random", "grid", "bayes")  # what W&B's sweep controller knows
GRID_KINDS = ("constant", "choice", "grid", "randint", "quniform", "variant")  # what a W&B grid (or ours) lists


def check_sweep_method(params: list[Param], method: str) -> None:
    """Refuse what W&B's sweep engine would refuse: an unknown method, a grid over a continuous parameter."""
    if method not in SWEEP_METHODS:
        hint = "; early stopping is early_terminate: hyperband, not a method" if method == "hyperband" else ""
        raise ConfigError(f"--method {method!r}: W&B sweeps know {', '.join(SWEEP_METHODS)}{hint}")
    continuous = [p.key for p in params if p.kind not in GRID_KINDS]
    if method == "grid" and continuous:
        raise ConfigError(f"--method grid: W&B grids only categorical, constant, int_uniform and q_uniform "
                          f"parameters; {', '.join(continuous)} {'is' if len(continuous) == 1 else 'are'} "
                          "continuous (give them values, or use --method random or bayes)")


def sweep_command(task: str, *, preset: str, data: str | None, runs_dir: str) -> list[str]:
    """What ``wandb agent`` runs for each run: ``dist-spk train`` with the agent's ``--key=value`` arguments.

    Without ``data``, the agent's environment variable ``DIST_SPK_DATA`` names the dataset (W&B's
    ``${envvar:...}`` macro). Each run writes ``runs_dir/<W&B run id>``.
    """
    return ["${env}", "dist-spk", "train", task, "--preset", preset, "--data", data or "${envvar:DIST_SPK_DATA}",
            "--out", runs_dir, "${args}"]


def to_wandb_sweep(params: list[Param], *, metric: str, method: str = "bayes", command: list[str] | None = None,
                   early_terminate: dict[str, Any] | None = None, program: str = "") -> dict:
    """The equivalent W&B sweep configuration, checked as W&B's engine checks it."""
    check_sweep_method(params, method)
    sweep: dict[str, Any] = {"method": method, "metric": {"name": metric, "goal": "minimize"},
                             "parameters": {p.key: p.to_wandb() for p in params}}
    if program:
        sweep["program"] = program
    if command:
        sweep["command"] = command
    if early_terminate:
        sweep["early_terminate"] = early_terminate
    return sweep


def dump_sweep(params: list[Param], *, metric: str, method: str = "bayes", command: list[str] | None = None,
               early_terminate: dict[str, Any] | None = None) -> str:
    if any(p.kind == "variant" for p in params):
        raise ConfigError("a variant list cannot be a W&B sweep (an agent run gets values, not named sets of keys); "
                          "run it with 'dist-spk tune' (online, the search still shows as a sweep)")
    return yaml.safe_dump(to_wandb_sweep(params, metric=metric, method=method, command=command,
                                         early_terminate=early_terminate), sort_keys=False)
