"""The console a person reads: stages of long commands, closing summaries, and where library internals go.

A command's own lines are short and say what happens to the user's data. The libraries it drives (Ray, Lightning,
pyannote, speechbrain, W&B) have their own loggers and warnings; :func:`internals_to` sends those to a log file
(``EXP/logs/``) whose path is printed once. ``--verbose`` (or ``DIST_SPK_VERBOSE=1``) brings them back to the console.

On a terminal, progress is drawn in place (rich, tqdm); when the output is a file or a pipe (CI, ``ray job logs``),
each stage and event is one plain line.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

VERBOSE_VAR = "DIST_SPK_VERBOSE"
# the loggers of what dist_spk drives, and dist_spk's own details ("dist_spk.wandb": W&B's console messages)
LIBRARY_LOGGERS = ("ray", "lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "pyannote",
                   "speechbrain", "py.warnings", "torch", "urllib3", "botocore", "filelock", "fsspec", "optuna",
                   "dist_spk")


# libraries that give their loggers console handlers when imported (lightning/__init__.py always does, optuna on
# first use; ray sets its logging config): imported before their handlers are taken; the commands that route
# internals use them anyway
IMPORTED_FIRST = ("ray", "lightning", "optuna")


def verbose() -> bool:
    return os.environ.get(VERBOSE_VAR, "").lower() not in ("", "0", "false", "no")


def set_verbose(on: bool) -> None:
    """Set for this process and what it starts (Ray's local workers inherit the environment)."""
    if on:
        os.environ[VERBOSE_VAR] = "1"


def terminal() -> bool:
    """Whether stdout is a terminal a view can be redrawn on."""
    from rich.console import Console

    return Console().is_terminal


def rich_console():
    """A rich Console for tables: the terminal's width, or 160 columns in a file or pipe (rich's default, 80,
    truncates file names and folds rows in a log)."""
    from rich.console import Console

    return Console(width=None if terminal() else int(os.environ.get("COLUMNS", 160)), highlight=False)


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def say(line: str) -> None:
    print(line, flush=True)


class LogFile(logging.Handler):
    """The log file of :func:`internals_to`; ``deferred``, it holds the records in memory until :meth:`open`, so
    that a command refused before it writes anything (a search whose trials no node can hold) leaves no folder."""

    def __init__(self, path: Path, *, deferred: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._held: list[logging.LogRecord] = []
        self._file = None
        if not deferred:
            self.open()

    def open(self) -> None:
        with self.lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
                for record in self._held:
                    self._write(record)
                self._held.clear()

    def emit(self, record: logging.LogRecord) -> None:
        if self._file is None:
            self._held.append(record)
        else:
            self._write(record)

    def _write(self, record: logging.LogRecord) -> None:
        try:
            self._file.write(self.format(record) + "\n")
            self._file.flush()
        except Exception:  # noqa: BLE001 - logging must never raise; logging's own fallback
            self.handleError(record)

    def close(self) -> None:
        with self.lock:
            if self._file is not None:
                self._file.close()
        super().close()


@contextlib.contextmanager
def internals_to(log_file: Path | str, *, deferred: bool = False) -> Iterator[LogFile]:
    """While inside: the libraries' loggers and Python warnings write to ``log_file`` (appended; ``deferred``: from
    when the yielded :class:`LogFile` is opened), and to the console too only when :func:`verbose`. Restored on
    exit.

    The libraries' loggers get the file instead of their console handlers (:data:`IMPORTED_FIRST` are imported first,
    so that their handlers exist to be taken); the root logger gets it too, which catches the loggers of libraries
    imported later.
    """
    for module in IMPORTED_FIRST:
        importlib.import_module(module)
    handler = LogFile(Path(log_file), deferred=deferred)
    loud = verbose()
    root = logging.getLogger()
    saved = [(root, list(root.handlers), root.propagate, root.level)]
    on_console = any(getattr(h, "stream", None) in (sys.stderr, sys.stdout) for h in root.handlers)
    root.handlers = [*root.handlers, handler, *([logging.StreamHandler()] if loud and not on_console else [])]
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), logger.propagate, logger.level))
        if loud and logger.handlers:  # its own console handler stays, and it writes to the file as well
            logger.handlers = [*logger.handlers, handler]
        elif not loud:  # through the root logger: to the file only
            logger.handlers, logger.propagate = [], True
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
    with warnings.catch_warnings():
        logging.captureWarnings(True)  # warnings.warn -> the "py.warnings" logger -> the file
        try:
            yield handler
        finally:
            logging.captureWarnings(False)
            for logger, handlers, propagate, level in saved:
                logger.handlers, logger.propagate = handlers, propagate
                logger.setLevel(level)
            handler.close()


class Stages:
    """A long command's stages: one numbered line as each begins and one as it ends (its time), the stage's own
    progress bars in between; :meth:`summary` closes the command."""

    def __init__(self, command: str, total: int) -> None:
        self.command, self.total, self.done = command, total, 0
        self.started = time.monotonic()

    @contextlib.contextmanager
    def stage(self, title: str) -> Iterator[None]:
        self.done += 1
        say(f"[{self.command} {self.done}/{self.total}] {title}")
        started = time.monotonic()
        yield
        say(f"[{self.command} {self.done}/{self.total}] done in {duration(time.monotonic() - started)}")

    def summary(self, title: str, *, figures: list[tuple[str, str, str]], produced: list[tuple[str, str]],
                next_steps: list[str]) -> None:
        """The closing block: the key figures beside their trivial baselines, what was written where, what to run
        next. ``figures``: (what, value, baseline); ``produced``: (what, where)."""
        from rich import box
        from rich.table import Table

        console = rich_console()
        console.print(f"\n{title} (in {duration(time.monotonic() - self.started)})", style="bold")
        if figures:
            table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
            for column in ("", "result", "trivial baseline"):
                table.add_column(column, justify="left" if not column else "right")
            for row in figures:
                table.add_row(*row)
            console.print(table)
        for what, where in produced:
            console.print(f"  {what:<24} {where}")
        for line in next_steps:
            console.print(f"  next: {line}")
        sys.stdout.flush()
