"""The live view of a search: a row per trial, the best highlighted, a bar for the whole search.

A Tune callback in the search's driver (Tune's own status tables are off, ``verbose=0``). On a terminal it redraws one
rich table in place; otherwise (CI, ``ray job logs``, a file) it prints one plain line per trial event (started, each
epoch, promoted by ASHA, stopped early, completed, failed) and a status line when nothing else was printed for
``status_seconds``. A failed trial's error is printed in full with the trial's id and its log file
(:mod:`dist_spk.launch.worker_logs`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.tune import Callback

from dist_spk.console import duration, say, terminal
from dist_spk.launch.worker_logs import trial_log

PENDING, RUNNING, COMPLETED, STOPPED, FAILED, RETRYING = ("pending", "running", "completed", "stopped early",
                                                         "failed", "retrying")


def asha_rungs(*, grace_period: int, reduction_factor: float, max_t: int) -> tuple[int, ...]:
    """The epochs at which ASHA compares trials (its rung milestones below ``max_t``), as Tune's ASHA builds them."""
    if reduction_factor <= 1 or grace_period >= max_t:
        return ()
    count = int(math.log(max_t / grace_period) / math.log(reduction_factor) + 1)  # ray.tune.schedulers.async_hyperband
    return tuple(sorted({int(grace_period * reduction_factor ** k) for k in range(count)} - {max_t}))


@dataclass
class TrialRow:
    trial_id: str
    params: str
    state: str = PENDING
    epochs: int = 0
    now: float | None = None
    best: float | None = None
    best_epoch: int | None = None
    rungs: int = 0  # ASHA rungs passed (promoted)
    started: float | None = None
    ended: float | None = None
    notes: list[str] = field(default_factory=list)

    def seconds(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended or time.monotonic()) - self.started


def short_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict) and "name" in value:  # a variant
        return str(value["name"])
    return str(value)


def short_key(key: str, keys: list[str]) -> str:
    """``optim.lr`` -> ``lr``; ``optim.name`` -> ``optim`` (a ``name`` says little alone); the full key when
    another key would read the same."""

    def short(one: str) -> str:
        section, _, last = one.rpartition(".")
        return section.rsplit(".", 1)[-1] if last == "name" and section else last

    return key if [k for k in keys if k != key and short(k) == short(key)] else short(key)


class SearchView(Callback):
    """Tune callback: the console of a running search."""

    def __init__(self, *, objective: str, max_epochs: int, total_trials: int, params: list[str],
                 scheduler: str = "fifo", rungs: tuple[int, ...] = (), logs_dir: Path | None = None,
                 live: bool | None = None, status_seconds: float = 60.0) -> None:
        self.objective, self.max_epochs, self.total = objective, max_epochs, total_trials
        self.params, self.scheduler, self.rungs, self.logs_dir = params, scheduler, rungs, logs_dir
        self.live_mode = terminal() if live is None else live
        self.status_seconds = status_seconds
        self.rows: dict[str, TrialRow] = {}
        self.started = time.monotonic()
        self._last_line = self._drawn = time.monotonic()
        self._live = None

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks into its state: the screen stays here
        return {**self.__dict__, "_live": None}

    def setup(self, **info):
        """The search (re)starts; after ``--resume`` this is Tune's copy of the view, with another process's clocks."""
        self.started = self._last_line = time.monotonic()
        for row in self.rows.values():
            row.started = row.ended = None

    # --- what happened -----------------------------------------------------------------------------------------
    def _row(self, trial) -> TrialRow:
        row = self.rows.get(trial.trial_id)
        if row is None:
            shown = " ".join(f"{short_key(key, self.params)}={short_value(trial.config[key])}" for key in self.params
                             if key in trial.config)
            row = self.rows[trial.trial_id] = TrialRow(trial.trial_id, shown)
        return row

    def _best(self) -> TrialRow | None:
        scored = [row for row in self.rows.values() if row.best is not None]
        return min(scored, key=lambda row: row.best) if scored else None

    def _event(self, line: str) -> None:
        self._last_line = time.monotonic()
        if self._live is not None:
            self._live.console.print(line, highlight=False, markup=False)
        else:
            say(line)

    def on_step_end(self, iteration, trials, **info):
        for trial in trials:
            self._row(trial)
        if self._live is None and self.live_mode:
            self._start_live()
        if self._live is not None:
            if time.monotonic() - self._drawn >= 0.5:  # Tune's loop turns many times a second; the clocks tick
                self._redraw()
        elif time.monotonic() - self._last_line >= self.status_seconds:
            self._event(self.status_line())

    def on_trial_start(self, iteration, trials, trial, **info):
        row = self._row(trial)
        again = row.state != PENDING
        row.state, row.started, row.ended = RUNNING, row.started or time.monotonic(), None
        number = list(self.rows).index(trial.trial_id) + 1
        self._event(f"[search] {trial.trial_id} {'restarted' if again else 'started'} ({number}/{self.total}): "
                    f"{row.params}")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        row = self._row(trial)
        row.epochs = int(result.get("training_iteration", row.epochs + 1))
        value = result.get(self.objective)
        promoted = next((rung for rung in self.rungs if rung == row.epochs - 1), None)
        if promoted is not None:
            row.rungs += 1
        if isinstance(value, int | float) and math.isfinite(value):
            row.now = float(value)
            if row.best is None or value < row.best:
                row.best, row.best_epoch = float(value), row.epochs
        if self._live is None:
            best = f" (best {row.best:.4f})" if row.best is not None else ""
            now = f"{self.objective} {row.now:.4f}" if row.now is not None else f"no {self.objective}"
            after = f"; promoted by ASHA at epoch {promoted}" if promoted is not None else ""
            self._event(f"[search] {trial.trial_id} epoch {row.epochs}/{self.max_epochs}: {now}{best}{after}")
        else:
            self._redraw()

    def on_trial_complete(self, iteration, trials, trial, **info):
        row = self._row(trial)
        row.ended = time.monotonic()
        row.state = COMPLETED if row.epochs >= self.max_epochs else STOPPED
        leader = self._best()
        verdict = f"best {self.objective} {row.best:.4f} at epoch {row.best_epoch}" if row.best is not None \
            else f"no {self.objective}"
        by = f" by {self.scheduler.upper()}" if row.state == STOPPED and self.scheduler != "fifo" else ""
        lead = "; best so far" if leader is row and row.best is not None else ""
        self._event(f"[search] {trial.trial_id} {row.state}{by} after {row.epochs}/{self.max_epochs} epochs "
                    f"({duration(row.seconds())}): {verdict}{lead}")

    def _failure(self, trial, state: str) -> None:
        row = self._row(trial)
        row.state, row.ended = state, time.monotonic()
        error = trial.get_error() if hasattr(trial, "get_error") else None
        log = f"; its log: {trial_log(self.logs_dir, trial.trial_id)}" if self.logs_dir else ""
        retry = ", retrying from its last checkpoint" if state == RETRYING else ""
        self._event(f"[search] {trial.trial_id} FAILED after {row.epochs}/{self.max_epochs} epochs{retry}{log}")
        if error:
            self._event(str(error).rstrip())

    def on_trial_error(self, iteration, trials, trial, **info):
        self._failure(trial, FAILED)

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._failure(trial, RETRYING)

    def on_experiment_end(self, trials, **info):
        self.close()

    def _redraw(self) -> None:
        self._drawn = time.monotonic()
        self._live.update(self._render())

    def close(self) -> None:
        if self._live is not None:
            self._redraw()
            self._live.stop()
            self._live = None

    # --- how it looks ------------------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        found = {state: 0 for state in (PENDING, RUNNING, RETRYING, COMPLETED, STOPPED, FAILED)}
        for row in self.rows.values():
            found[row.state] += 1
        found[PENDING] += max(0, self.total - len(self.rows))
        return found

    def status_line(self) -> str:
        counts = self.counts()
        done = counts[COMPLETED] + counts[STOPPED] + counts[FAILED]
        leader = self._best()
        best = f"; best {self.objective} {leader.best:.4f} ({leader.trial_id})" if leader else ""
        return (f"[search] {done}/{self.total} trials done ({counts[STOPPED]} stopped early, {counts[FAILED]} failed), "
                f"{counts[RUNNING] + counts[RETRYING]} running, {counts[PENDING]} pending{best}; "
                f"{duration(time.monotonic() - self.started)}")

    def _start_live(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self._live = Live(self._render(), console=Console(), refresh_per_second=2, transient=False,
                          redirect_stdout=True, redirect_stderr=True)
        self._live.start()

    def _render(self):
        from rich import box
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        leader = self._best()
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left",
                      title=f"search: {self.total} trials, objective {self.objective} (lower is better)")
        for column in ("trial", "state", "epoch", self.objective, "best", "time", "params"):
            table.add_column(column, justify="right" if column in ("epoch", self.objective, "best", "time") else "left",
                             no_wrap=column != "params")
        for row in self.rows.values():
            state = row.state + (f" ↑{row.rungs}" if row.rungs else "")
            cells = (row.trial_id, state, f"{row.epochs}/{self.max_epochs}",
                     "-" if row.now is None else f"{row.now:.4f}", "-" if row.best is None else f"{row.best:.4f}",
                     duration(row.seconds()) if row.started else "-", row.params)
            style = "bold green" if row is leader else "dim" if row.state in (STOPPED, PENDING) else \
                "red" if row.state in (FAILED, RETRYING) else None
            table.add_row(*cells, style=style)
        counts = self.counts()
        done = counts[COMPLETED] + counts[STOPPED] + counts[FAILED]
        bar = ProgressBar(total=max(self.total, 1), completed=done, width=40)
        footer = Text(f" {done}/{self.total} trials done, {counts[RUNNING]} running, {counts[STOPPED]} stopped early"
                      f", {counts[FAILED]} failed; {duration(time.monotonic() - self.started)}")
        progress = Table.grid()
        progress.add_row(bar, footer)
        return Group(table, progress)
