"""Ray's worker and actor output, on the driver: into log files, not the console (unless verbose).

With ``log_to_driver`` Ray streams every line its workers and actors print (Ray Train's controller, the trial
drivers, the training workers, the placement-group cleaner, the raylet) to the driver, where one handler of its
stdstream dispatcher prints them with a ``(name pid=...)`` prefix, folding lines that differ only in numbers
("[repeated 3x across cluster]"). :func:`capture_worker_output` swaps that handler for :class:`WorkerOutput`, which
writes every line, unfolded, to ``LOGS/workers.log`` and each trial's to ``LOGS/trial-<id>.log``; with
``--verbose`` it also prints them, unfolded, with the trial's id.

A line names its trial when a process of the trial said so: trial drivers and training workers print
``[trial <id>] ...`` (:data:`TRIAL_TAG`) first; every later line of that process (its pid on its node) belongs to
the trial. The dispatcher is Ray's (``ray._private.ray_logging``), used the same way by Ray's own client mode; it
is private, so a Ray without it falls back to Ray's printing (checked in tests/ray/test_tune_search.py).
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from dist_spk.console import verbose

RAY_HANDLER = "ray_print_logs"  # the name Ray's driver registers its printing handler under (ray/_private/worker.py)
TRIAL_TAG = re.compile(r"^\[trial (?P<trial>[\w.-]+)\]")
# a run's or experiment's logs/ folder: the driver's library loggers (dist_spk.console.internals_to), every worker line
LOGS_DIR, DRIVER_LOG, WORKERS_LOG = "logs", "driver.log", "workers.log"


def trial_log(logs_dir: Path, trial_id: str) -> Path:
    return logs_dir / f"trial-{trial_id}.log"


def _source(data: dict[str, Any], trial: str | None = None) -> str:
    """``(RayTrainWorker pid=123, ip=10.0.0.2, trial t_00001)``: who printed a batch of lines."""
    name = data.get("actor_name") or data.get("task_name") or ""
    return f"({name} pid={data.get('pid', '')}, ip={data.get('ip', '')}{f', trial {trial}' if trial else ''})"


class WorkerOutput:
    """Ray's log batches (dicts with ``lines``, ``pid``, ``ip``, ``actor_name``/``task_name``, ``is_err``) to files."""

    def __init__(self, logs_dir: Path, *, echo: bool, show: tuple[str, ...] = ()) -> None:
        self.logs_dir = Path(logs_dir)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.echo, self.show = echo, show
        self._all = open(self.logs_dir / WORKERS_LOG, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._trials: dict[str, TextIO] = {}
        self._owner: dict[tuple[str, str], str] = {}  # (ip, pid) -> trial id
        self._lock = threading.Lock()

    def trials_of(self, data: dict[str, Any]) -> Iterator[tuple[str | None, str]]:
        """(trial, line) for each line of a batch: a process belongs to the trial its latest ``[trial <id>]`` line
        named (a reused trial process moves on to the next trial), None before its first."""
        process = (str(data.get("ip", "")), str(data.get("pid", "")))
        for line in data.get("lines", []):
            tagged = TRIAL_TAG.match(line)
            if tagged:
                self._owner[process] = tagged["trial"]
            yield self._owner.get(process), line

    def __call__(self, data: dict[str, Any]) -> None:
        if data.get("pid") == "autoscaler":
            self._autoscaler(data)
            return
        with self._lock:
            if self._all.closed:  # a raylet message racing the swap (not under the dispatcher's lock)
                _LateLines(self)(data)
                return
            for trial, line in self.trials_of(data):
                prefix = _source(data, trial)
                self._all.write(f"{prefix} {line}\n")
                if trial is not None:
                    self._trial_file(trial).write(f"{_source(data)} {line}\n")
                if self.echo:
                    print(f"{prefix} {line}", file=sys.stderr if data.get("is_err") else sys.stdout, flush=True)
                elif self.show and line.startswith(self.show):  # our own lines a single run shows as they come
                    print(line, flush=True)
            self._all.flush()
            for handle in self._trials.values():
                handle.flush()

    def _autoscaler(self, data: dict[str, Any]) -> None:
        """The autoscaler's periodic status goes nowhere (``ray status`` shows it); its events (nodes added or
        failing to start) are what a search on a cluster waits for: on the console, as Ray prints them."""
        from ray._private.worker import filter_autoscaler_events

        with self._lock:
            for line in filter_autoscaler_events(data.get("lines", [])):
                self._all.write(f"(autoscaler) {line}\n")
                if not line.startswith("Tip: use `ray status`"):  # Ray's hint, printed once before the events
                    print(f"[autoscaler] {line}", flush=True)
            self._all.flush()

    def _trial_file(self, trial: str) -> TextIO:
        if trial not in self._trials:
            self._trials[trial] = open(trial_log(self.logs_dir, trial), "a", encoding="utf-8")  # noqa: SIM115
        return self._trials[trial]

    def close(self) -> None:
        with self._lock:
            for handle in (self._all, *self._trials.values()):
                handle.close()
            self._trials.clear()


@contextlib.contextmanager
def capture_worker_output(logs_dir: Path, *, show: tuple[str, ...] = ()) -> Iterator[WorkerOutput | None]:
    """While inside (Ray connected with ``log_to_driver``): worker output goes to ``logs_dir``, not the console
    (lines starting with one of ``show`` too: a single run's ``[epoch N]`` lines).

    After it, lines still arriving (Ray flushes its workers' last lines as the search's actors end, and at
    ``ray.shutdown``) are appended to ``workers.log`` until this process disconnects from Ray.
    """
    try:
        import ray._private.worker as ray_worker
        from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher
    except ImportError:  # a Ray without the dispatcher: its own printing stays
        yield None
        return
    output = WorkerOutput(logs_dir, echo=verbose(), show=show)
    _route(ray_worker, dispatcher, output)
    try:
        yield output
    finally:
        # swapped first: Ray's log thread may be inside the old handler until the dispatcher's lock is released
        _route(ray_worker, dispatcher, _LateLines(output))
        output.close()


def _route(ray_worker, dispatcher, handler) -> None:
    dispatcher.remove_handler(RAY_HANDLER)
    dispatcher.add_handler(RAY_HANDLER, handler)
    # the raylet's messages ("N PYTHON worker processes have been started ...") are printed by Ray's error
    # listener thread through this module function, not the dispatcher
    ray_worker.print_to_stdstream = lambda data, ignore_prefix=False: handler(data)


class _LateLines:
    """Lines after the search (the last trial's last lines can arrive after Tune returned, on a loaded machine):
    labelled with their trial as before, appended to ``workers.log`` and the trial's log (opened per batch: they
    are few), and echoed when verbose."""

    def __init__(self, output: WorkerOutput) -> None:
        self.output = output

    def __call__(self, data: dict[str, Any]) -> None:
        logs_dir = self.output.logs_dir
        labelled, by_trial = [], {}
        for trial, line in self.output.trials_of(data):
            labelled.append(f"{_source(data, trial)} {line}\n")
            if trial is not None:
                by_trial.setdefault(trial, []).append(f"{_source(data)} {line}\n")
        with open(logs_dir / WORKERS_LOG, "a", encoding="utf-8") as handle:
            handle.writelines(labelled)
        for trial, lines in by_trial.items():
            with open(trial_log(logs_dir, trial), "a", encoding="utf-8") as handle:
                handle.writelines(lines)
        if self.output.echo:
            sys.stdout.writelines(labelled)
            sys.stdout.flush()
