"""W&B for searches: one run per trial, grouped under its experiment; the API key never leaves the driver.

The one adapter between dist_spk and W&B. :class:`TrialRuns`, a Ray Tune callback, opens one W&B run per trial in
the search's own driver process (W&B runs several runs per process, ``reinit="create_new"``) and logs each
result there. Earlier versions used Ray's ``WandbLoggerCallback``, which starts a logging actor per trial and hands
it the key (as a runtime-env variable Ray writes to ``runtime_env_agent.log``, ray-project/ray#39502, which we had
to work around by overriding a private method), logs ``result["config"]`` flattened into history at every epoch,
and keeps the objective's *last* value in the summary. Here:

- the summary holds the objective's best value (``define_metric(objective, summary="min")``) and
  ``best/<objective>``, ``best/epoch``, so W&B ranks trials as ``EXP/best`` does;
- every metric is plotted against ``epoch`` (``define_metric("*", step_metric="epoch")``); the config goes to the
  run's config (the full resolved config, dotted keys), never into history;
- between epochs, the trial's ``steps.jsonl`` (rank 0's ``train_step/loss`` and ``train_step/lr`` every
  ``trainer.log_every_n_steps`` steps, at fractional ``epoch``) is streamed as it grows, read from the run
  directory on shared storage: an hours-long epoch shows its loss curve while it runs;
- the group is the experiment's own id (``EXP/wandb/experiment.json``, kept across ``--resume``), so two
  experiments whose folders share a name never merge; a resumed trial continues its run (same id);
- every run is finished when its trial ends and at the end of the search: the offline files are complete
  (W&B's exit record) when ``tune`` returns;
- online when a key is found: ``WANDB_API_KEY`` or the netrc entry ``wandb login`` writes, the cluster's own (never a
  job's metadata, :mod:`dist_spk.launch.secrets`); otherwise offline under ``EXP/wandb`` (``wandb sync`` later).
"""

from __future__ import annotations

import json
import logging
import math
import netrc
import os
import queue
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ray.tune import Callback

from dist_spk.console import verbose
from dist_spk.errors import DistSpkError
from dist_spk.launch.secrets import SECRETS
from dist_spk.runs import storage
from dist_spk.runs.run_dir import STEPS_FILE, JsonlTail

KEY_VAR = SECRETS["wandb_api_key"]  # WANDB_API_KEY
CLOSE_TIMEOUT_S = 120.0  # the longest a search's end waits for W&B to finish its runs
# what Tune adds to every result: bookkeeping, not metrics (the config goes to the run's config)
TUNE_KEYS = {"config", "trial_id", "date", "timestamp", "pid", "hostname", "node_ip", "experiment_tag", "done",
             "checkpoint_dir_name", "should_checkpoint", "checkpoint_path", "wall_time", "time_since_restore",
             "iterations_since_restore", "training_iteration", "time_this_iter_s", "time_total_s"}


def server_url() -> str:
    return os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")


def wandb_key() -> tuple[str | None, str]:
    """(the W&B key, where it came from): ``WANDB_API_KEY``, else the netrc entry ``wandb login`` writes."""
    if os.environ.get(KEY_VAR):
        return os.environ[KEY_VAR], KEY_VAR
    host = urlsplit(server_url()).hostname or "api.wandb.ai"
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None, ""
    return (entry[2], f"{path} (wandb login)") if entry and entry[2] else (None, "")


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 1e-3}}`` -> ``{"optim.lr": 1e-3}`` (how searched keys are named everywhere)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def experiment_group(exp_dir: Path, *, location: str | None = None) -> str:
    """The experiment's W&B group: its folder's name plus a unique suffix, kept in ``EXP/wandb/experiment.json``
    (``location``: where the experiment lives, when ``exp_dir`` is its local mirror)."""
    record = Path(exp_dir) / "wandb" / "experiment.json"
    if record.is_file():
        return json.loads(record.read_text())["group"]
    group = f"{Path(exp_dir).name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    record.parent.mkdir(parents=True, exist_ok=True)
    where = location or str(Path(exp_dir).resolve())
    record.write_text(json.dumps({"group": group, "experiment": where}, indent=1) + "\n")
    return group


def metrics_of(result: dict[str, Any]) -> dict[str, float]:
    """The numbers a result reports (our metrics and epoch), without Tune's bookkeeping."""
    return {k: v for k, v in result.items() if k not in TUNE_KEYS and isinstance(v, int | float)
            and not isinstance(v, bool) and math.isfinite(v)}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value  # numpy scalars from Tune's samplers


def logs_offline(*, announce_dir: Path | None = None) -> bool:
    """Whether W&B runs go offline: no key (env or netrc), ``WANDB_MODE=offline``, or no route to the server (a
    search must never wait on its dashboard: W&B would retry for minutes per run). With ``announce_dir``, an
    unreachable server is said on the console."""
    key, _ = wandb_key()
    if not key or os.environ.get("WANDB_MODE") == "offline":
        return True
    if reachable(server_url()):
        return False
    if announce_dir is not None:
        print(f"[tune] W&B server {server_url()} is unreachable: logging offline to {announce_dir} instead",
              flush=True)
    return True


def open_run(*, folder: Path | str, offline: bool, objective: str | None = None, sweep_id: str | None = None,
             **init: Any):
    """``wandb.init`` as every dist_spk run does it: one of several runs in this process, no console capture;
    with ``objective``, every metric plotted against ``epoch`` and the objective's minimum in the summary."""
    import wandb

    run = wandb.init(dir=str(folder), mode="offline" if offline else "online", reinit="create_new",
                     settings=wandb.Settings(console="off", silent=True, sweep_id=sweep_id), **init)
    if not verbose():
        # W&B's own console messages ("wandb: Generating checksum ...") into the log file (dist_spk.console): its
        # silent setting is read once, when W&B first sets up in the process, so it is set again here
        wandb.termsetup(wandb.Settings(silent=True), logging.getLogger("dist_spk.wandb"))
    if objective is not None:
        run.define_metric("epoch")
        run.define_metric("*", step_metric="epoch")
        run.define_metric(objective, summary="min")
    return run


def log_epoch(run, row: dict[str, float], *, objective: str, best: float) -> float:
    """Log one epoch's row; keep ``best/<objective>`` and ``best/epoch`` in the summary; return the best so far."""
    run.log(row)
    value = row.get(objective)
    if value is None or value >= best:
        return best
    run.summary[f"best/{objective}"] = value
    run.summary["best/epoch"] = row.get("epoch")
    return value


class TrialRuns(Callback):
    """One W&B run per trial, opened, logged and finished in the search's driver process.

    Tune calls its callbacks in its event loop, between scheduling decisions, and warns when one takes over 0.5 s
    ("a performance bottleneck"). Opening a W&B run takes seconds (``wandb.init`` starts and handshakes a run in
    W&B's service) and logging waits on it too, so the callbacks only queue the work: one thread, in order, does
    every W&B call (bench/driver_callback.py measures both ways). :meth:`flush` waits for it, :meth:`close`
    finishes everything. A W&B failure is written to the log and said once; it never stops the search.
    """

    def __init__(self, *, project: str, exp_dir: Path, objective: str, base: dict[str, Any], offline: bool,
                 sweep_id: str | None = None, job_type: str = "trial", poll_seconds: float = 2.0,
                 location: str | None = None, in_background: bool = True):
        # W&B's files go to exp_dir (local: the experiment, or its mirror); trials' step logs are read at location
        self.project, self.exp_dir, self.objective = project, str(exp_dir), objective
        self.location = location or str(Path(exp_dir).resolve())
        self.base, self.offline, self.job_type, self.sweep_id = flatten(base), offline, job_type, sweep_id
        self.group = experiment_group(Path(exp_dir), location=self.location)
        self.poll_seconds = poll_seconds
        self.in_background = in_background
        self._runs: dict[str, Any] = {}
        self._steps: dict[str, JsonlTail] = {}
        self._best: dict[str, float] = {}
        self._polled = 0.0
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self.failures: list[str] = []

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its callbacks into the experiment state: open runs and the thread stay in this process."""
        return {**self.__dict__, "_runs": {}, "_steps": {}, "_queue": None, "_thread": None}

    # --- the driver side: queue the work -------------------------------------------------------------------------
    def _submit(self, work, *args) -> None:
        if not self.in_background:
            self._do(work, *args)
            return
        if self._thread is None or not self._thread.is_alive():
            self._queue = queue.Queue()
            self._thread = threading.Thread(target=self._work, name="wandb-trial-runs", daemon=True)
            self._thread.start()
        self._queue.put((work, args))

    def flush(self) -> None:
        """Wait until every queued W&B call is done."""
        if self._queue is not None:
            self._queue.join()

    def on_trial_start(self, iteration, trials, trial, **info):
        self._tail(trial.trial_id)  # here: where the step log ends now, not when the W&B thread gets to it
        self._submit(self._open, trial.trial_id, dict(trial.config))

    def on_step_end(self, iteration, trials, **info):
        """Tune's event loop turns many times a second: stream the step logs every ``poll_seconds``."""
        if time.monotonic() - self._polled < self.poll_seconds:
            return
        self._polled = time.monotonic()
        self._submit(self._stream_all)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._submit(self._log_result, trial.trial_id, dict(trial.config), metrics_of(result))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._submit(self._finish, trial.trial_id, 0)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._submit(self._finish, trial.trial_id, 1)

    def close(self) -> None:
        """Finish every run still open (an interrupted search): their files are complete on disk when it returns."""
        self._submit(self._finish_all)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=CLOSE_TIMEOUT_S)
            if self._thread.is_alive():  # a W&B server that hangs never holds the search's results hostage
                print(f"[tune] W&B did not finish its runs within {CLOSE_TIMEOUT_S:.0f} s (server slow or gone); "
                      f"what it wrote is in {Path(self.exp_dir) / 'wandb'} (wandb sync uploads it)", flush=True)
            self._thread = self._queue = None

    def on_experiment_end(self, trials, **info):
        self.close()

    # --- the W&B thread ----------------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                work, args = item
                self._do(work, *args)
            finally:
                self._queue.task_done()

    def _do(self, work, *args) -> None:
        try:
            work(*args)
        except Exception as error:  # noqa: BLE001 - the dashboard never stops the search
            logging.getLogger("dist_spk.wandb").exception("W&B logging failed in %s", getattr(work, "__name__", work))
            if not self.failures:
                print(f"[tune] W&B logging failed ({type(error).__name__}: {error}); the search goes on; details "
                      "in the experiment's logs/driver.log", flush=True)
            self.failures.append(f"{type(error).__name__}: {error}")

    def _open(self, trial_id: str, trial_config: dict[str, Any]):
        run = self._runs.get(trial_id)
        if run is None:
            config = {**self.base, **{k: _plain(v) for k, v in trial_config.items()}}
            variant = trial_config.get("variant")  # a variant list's trial: its name beside the id
            name = f"{trial_id}-{variant['name']}" if isinstance(variant, dict) else trial_id
            run = open_run(folder=self.exp_dir, offline=self.offline, objective=self.objective, sweep_id=self.sweep_id,
                           project=self.project, group=self.group, job_type=self.job_type, name=name,
                           id=f"{self.group}-{trial_id}", resume="allow", config=config)
            self._runs[trial_id] = run
            self._tail(trial_id)
        return run

    def _tail(self, trial_id: str) -> JsonlTail:
        """The trial's step log, followed from its end now: a trial resumed by a new driver had its earlier steps
        streamed by the old one."""
        if trial_id not in self._steps:
            self._steps[trial_id] = JsonlTail(storage.join(self.location, "trials", trial_id, STEPS_FILE),
                                              from_end=True)
        return self._steps[trial_id]

    def _stream_steps(self, trial_id: str) -> None:
        for row in self._tail(trial_id).rows():
            self._runs[trial_id].log(row)

    def _stream_all(self) -> None:
        for trial_id in self._runs:
            self._stream_steps(trial_id)

    def _log_result(self, trial_id: str, trial_config: dict[str, Any], row: dict[str, float]) -> None:
        run = self._open(trial_id, trial_config)
        self._stream_steps(trial_id)  # the epoch's steps first
        self._best[trial_id] = log_epoch(run, row, objective=self.objective,
                                         best=self._best.get(trial_id, math.inf))

    def _finish(self, trial_id: str, exit_code: int) -> None:
        run = self._runs.get(trial_id)
        if run is not None:
            self._stream_steps(trial_id)
            run.finish(exit_code=exit_code)
            del self._runs[trial_id], self._steps[trial_id]

    def _finish_all(self) -> None:
        for trial_id, run in self._runs.items():
            self._stream_steps(trial_id)
            run.finish()
        self._runs.clear()
        self._steps.clear()


def reachable(url: str, *, timeout: float = 5.0) -> bool:
    """Whether a TCP connection to the W&B server opens within ``timeout`` seconds."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


class FollowRun:
    """One W&B run for a single training run (``dist-spk train``), fed from its ``metrics.jsonl`` as epochs land.

    Reading the run directory works whoever trains (this process, or a Ray Train worker group whose rank 0 writes
    the file on shared storage), and keeps the key in this process. Under ``wandb agent`` (``WANDB_SWEEP_ID``,
    ``WANDB_RUN_ID`` in the environment) ``wandb.init`` joins the agent's run: the sweep sees the metric every
    epoch, so its ``early_terminate`` works. ``with FollowRun(...): run_training(...)``.
    """

    def __init__(self, *, run_dir: str | Path, project: str, objective: str, config: dict[str, Any], resume: bool,
                 interval: float = 2.0):
        # the run's files are read where they are written (a path, or the store rank 0 publishes to); W&B's own
        # files go to the local folder (the run directory, or its mirror)
        self.location, self.run_dir = storage.normalize(run_dir), storage.local_mirror(run_dir)
        self.project, self.objective = project, objective
        self.config, self.resume, self.interval = flatten(config), resume, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_epoch = -1  # epochs up to this one are in W&B already
        self._steps = JsonlTail(storage.join(self.location, STEPS_FILE), from_end=resume)
        self._best = math.inf
        self.run = None
        self.offline = False

    def __enter__(self) -> FollowRun:
        self.offline = logs_offline()
        record = self.run_dir / "wandb" / "run.json"
        record.parent.mkdir(parents=True, exist_ok=True)
        stored = storage.join(self.location, "wandb", "run.json")
        if self.resume and storage.is_remote(self.location) and storage.is_file(stored):
            record.write_bytes(storage.read_bytes(stored))
        run_id = os.environ.get("WANDB_RUN_ID")  # set by `wandb agent`
        if run_id is None and self.resume and record.is_file():
            run_id = json.loads(record.read_text())["id"]  # a resumed run continues its W&B run
        self.run = open_run(folder=self.run_dir, offline=self.offline, objective=self.objective, project=self.project,
                            job_type="train", id=run_id, resume="allow", config=self.config, allow_val_change=True)
        record.write_text(json.dumps({"id": self.run.id, "project": self.project}) + "\n")
        if self.resume:  # the epochs W&B has from before the interruption
            self._last_epoch = max((json.loads(line).get("epoch", -1) for line in _metric_lines(self.location)),
                                   default=-1)
        self._thread = threading.Thread(target=self._follow, name="wandb-follow", daemon=True)
        self._thread.start()
        return self

    def _follow(self) -> None:
        while not self._stop.wait(self.interval):
            self._log_new()

    def _log_new(self) -> None:
        for row in self._steps.rows():  # the steps first: the epoch rows that follow close them
            self.run.log(row)
        for line in _metric_lines(self.location):
            row = {k: v for k, v in json.loads(line).items() if isinstance(v, int | float) and not isinstance(v, bool)}
            if row.get("epoch", -1) <= self._last_epoch:
                continue
            self._last_epoch = row.get("epoch", self._last_epoch)
            self._best = log_epoch(self.run, row, objective=self.objective, best=self._best)

    def __exit__(self, kind, error, traceback) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._log_new()
        self.run.finish(exit_code=0 if error is None else 1)


def _metric_lines(location: str) -> list[str]:
    """Complete lines of ``metrics.jsonl`` (a line being written has no newline yet)."""
    try:
        text = storage.read_text(storage.join(location, "metrics.jsonl"))
    except (OSError, DistSpkError):
        return []
    return [line for line in text.split("\n")[:-1] if line.strip()]


def log_experiment(exp_dir: Path, *, project: str, objective: str, upload_best: bool) -> Path | None:
    """One run for the whole search (job type ``experiment``, in the experiment's group): the best config, the
    summary table, the plots, and ``EXP/best`` as a model artifact. Returns the run's file folder, or None when
    the search left no best trial."""
    import csv

    import wandb
    import yaml

    best = Path(exp_dir) / "best"
    if not (best / "metrics.json").is_file():
        return None
    offline = logs_offline()
    group = experiment_group(Path(exp_dir))
    config = flatten(yaml.safe_load((best / "config.yaml").read_text()))
    metrics = json.loads((best / "metrics.json").read_text())
    run = open_run(folder=exp_dir, offline=offline, project=project, group=group, job_type="experiment",
                   name=f"{group}-summary", id=f"{group}-summary", resume="allow", config=config)
    try:
        run.summary["best/trial"] = metrics["trial_id"]
        run.summary[f"best/{objective}"] = metrics["best"][objective]
        run.summary["best/epoch"] = metrics["best"]["epoch"]
        with (Path(exp_dir) / "summary.csv").open() as handle:
            rows = list(csv.reader(handle))
        run.log({"trials": wandb.Table(columns=rows[0], data=rows[1:])})
        for plot in sorted((Path(exp_dir) / "plots").glob("*.png")):
            run.log({f"plots/{plot.stem}": wandb.Image(str(plot))})
        if upload_best:
            artifact = wandb.Artifact(f"{group}-best", type="model", metadata={"objective": objective,
                                                                              **metrics["best"]})
            if offline:  # no second copy on disk: W&B records the files by checksum, `wandb sync` uploads them
                artifact.add_reference(best.resolve().as_uri())
            else:
                artifact.add_dir(str(best))
            run.log_artifact(artifact)
        entity = run.entity
    finally:
        run.finish()
    if not offline:
        _save_workspace(exp_dir, entity=entity, project=project, group=group, objective=objective,
                        history=metrics["history"])
    return Path(run.dir).parent


def _save_workspace(exp_dir: Path, *, entity: str, project: str, group: str, objective: str,
                    history: list[dict]) -> None:
    """The experiment's W&B workspace (:mod:`dist_spk.tune.wandb_workspace`), its URL printed and kept in
    ``EXP/wandb/experiment.json``. A dashboard that cannot be saved never fails a finished search."""
    from wandb.errors import Error as WandbError

    from dist_spk.tune.results import read_summary
    from dist_spk.tune.wandb_workspace import per_epoch_metrics, save_workspace

    _, _, params = read_summary(exp_dir)
    try:
        url = save_workspace(entity=entity, project=project, group=group, objective=objective, params=params,
                             metrics=per_epoch_metrics(history, objective))
    except (WandbError, OSError, ValueError) as err:
        print(f"[tune] the experiment's W&B workspace was not saved ({type(err).__name__}: {err})", flush=True)
        return
    record = Path(exp_dir) / "wandb" / "experiment.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "workspace": url}, indent=1) + "\n")
    print(f"[tune] W&B workspace of this experiment: {url}", flush=True)


def register_sweep(exp_dir: Path, sweep: dict[str, Any], *, project: str) -> str:
    """Online: the search as a W&B sweep that W&B does not schedule (``controller: local``; Ray Tune is the
    controller), so the Sweeps page shows it with its panels. Created once per experiment (the id is kept in
    ``EXP/wandb/experiment.json``, so ``--resume`` keeps adding to the same sweep)."""
    import wandb

    record = Path(exp_dir) / "wandb" / "experiment.json"
    experiment_group(Path(exp_dir))  # writes the record if missing
    data = json.loads(record.read_text())
    if not data.get("sweep_id"):
        data["sweep_id"] = wandb.sweep({**sweep, "controller": {"type": "local"}}, project=project)
        record.write_text(json.dumps(data, indent=1) + "\n")
    return data["sweep_id"]


def wandb_callback(project: str, exp_dir: Path, *, objective: str, base: dict[str, Any],
                   sweep: dict[str, Any] | None = None, location: str | None = None) -> tuple[TrialRuns, bool]:
    """(the callback, offline?) for a search writing to ``exp_dir`` (its local mirror when ``location``, where the
    experiment lives, is an object store).

    Offline as :func:`logs_offline` decides (an unreachable server is said on the console). Online, ``sweep`` (the
    search as a W&B sweep config) is registered and every trial's run joins it.
    """
    offline = logs_offline(announce_dir=exp_dir / "wandb")
    experiment_group(exp_dir, location=location)  # the record names where the experiment lives
    sweep_id = None
    if sweep and not offline:
        try:
            sweep_id = register_sweep(exp_dir, sweep, project=project)
        except Exception as err:  # W&B's server refusing or failing: the search runs, its trials still log
            reason = str(err).splitlines()[0][:200] if str(err) else ""
            print(f"[tune] the W&B sweep was not created ({type(err).__name__}: {reason}); trials log to the "
                  "experiment's group without it", flush=True)
    return TrialRuns(project=project, exp_dir=exp_dir, objective=objective, base=base, offline=offline,
                     sweep_id=sweep_id, location=location), offline
