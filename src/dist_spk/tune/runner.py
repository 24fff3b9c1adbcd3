"""``dist-spk tune``: a Ray Tune search over one task's space, trials as Ray Train worker groups.

Experiment directory ``EXP``::

    EXP/config.yaml, EXP/space.yaml   the base config and the search space, as resolved
    EXP/tune/                         Ray Tune's state (``--resume`` restores from it)
    EXP/train/train-<trial id>-<n>/   each start of a trial: its Ray Train run and checkpoints
    EXP/trials/<trial id>/            each trial's run directory (config.yaml, metrics.jsonl, checkpoints/)
    EXP/cache/ or EXP/data/           what every trial shares (pyannote's metadata cache, speaker manifests)
    EXP/wandb/                        W&B: experiment.json (the group), offline runs when no key is found
    EXP/summary.csv, EXP/best/        written when the search ends (see :mod:`dist_spk.tune.results`)
    EXP/plots/, EXP/optuna.journal    the search's plots and the search as an Optuna study (:mod:`dist_spk.tune.study`)

``EXP`` is a local path (on a multi-node cluster: a shared file system) or an object-store URI (``s3://bucket/exp``,
:mod:`dist_spk.runs.storage`): then Ray writes ``tune/`` and ``train/`` there itself, workers publish their run
files, and this process writes the rest in a local mirror and uploads it when the search ends.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from dist_spk.config import save_config, to_dict
from dist_spk.config.registry import TASKS
from dist_spk.config.tasks import TrainerConfig
from dist_spk.console import internals_to
from dist_spk.errors import ConfigError, DistSpkError
from dist_spk.launch.capacity import DRIVER_CPUS, plan_concurrency, read_cluster_capacity, worker_bundle
from dist_spk.launch.ray_train import check_cache_storage, check_gpu_workers, check_shared_storage
from dist_spk.launch.run import CHECKS, OBJECTIVES, PREPARES
from dist_spk.launch.worker_logs import DRIVER_LOG, LOGS_DIR, capture_worker_output
from dist_spk.runs import storage
from dist_spk.runs.locks import exclusive_or_fail
from dist_spk.tune.space import (
    Param,
    check_values,
    samples_anything,
    to_param_space,
    to_wandb_sweep,
    variant_list,
    with_repeats,
)

_LOCAL_RAY: list[bool] = []  # non-empty once this process started a local Ray


def connect_for_search(trainer: TrainerConfig) -> bool:
    """Join ``RAY_ADDRESS``, else start the local single-node test mode (then True).

    Locally, Ray gets one extra logical CPU per trial that fits: trial drivers only wait on their
    worker group, so without them a 2-core machine would run a single 1-worker trial at a time.
    """
    import ray

    from dist_spk.launch.ray_train import connect_ray, local_ray_env

    # the local test mode: a Ray this process started (for an earlier search too: the demo runs two)
    started_here = bool(_LOCAL_RAY) and ray.is_initialized()
    local = started_here or not (ray.is_initialized() or os.environ.get("RAY_ADDRESS"))
    if ray.is_initialized() or not local:
        connect_ray()
    else:
        cores = os.cpu_count() or 1
        concurrent = max(1, cores // max(1, trainer.workers * trainer.cpus_per_worker))
        local_ray_env()
        ray.init(num_cpus=cores + concurrent, log_to_driver=True)
        _LOCAL_RAY.append(True)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    total = ray.cluster_resources()
    where = os.environ.get("RAY_ADDRESS") or "a local Ray (test mode)"
    print(f"[ray] {where}: {len(nodes)} node(s), {total.get('CPU', 0):g} CPUs, {total.get('GPU', 0):g} GPUs",
          flush=True)
    return local


def trains_in_process(config, *, local: bool, remote: bool) -> bool:
    """Whether trials train in their Tune trial's own process (:class:`dist_spk.train.session.TrialSession`): in
    the local test mode, 1 worker per trial, ASHA or FIFO (PBT copies other trials' older checkpoints, which this
    path does not keep), experiment on a local disk; not when ``search.in_process_trials=false``."""
    return (config.search.in_process_trials and local and not remote and config.trainer.workers == 1
            and config.search.trial_scheduler != "pbt")


# What PBT may change when a trial continues from another trial's checkpoint (its "explore" step):
# keys (or sections, ending in ".") that shape neither the weights nor the optimizer's state.
# Other searched keys are sampled once per trial and copied with the checkpoint on "exploit".
PBT_MUTABLE = {name: spec.pbt_mutable for name, spec in TASKS.items()}  # the task registry's (config/registry.py)


def pbt_mutations(task: str, params: list[Param]) -> dict[str, Any]:
    """PBT's ``hyperparam_mutations``: the searched keys a running trial may change, with their domains."""
    mutable = PBT_MUTABLE[task]
    mutations = {}
    for p in params:
        if p.kind == "constant" or not any(p.key == m or (m.endswith(".") and p.key.startswith(m)) for m in mutable):
            continue
        mutations[p.key] = list(p.args[0]) if p.kind in ("choice", "grid") else p.to_tune()
    if not mutations:
        raise ConfigError(f"scheduler=pbt: the search space has no key PBT can change in a running trial; "
                          f"searchable mid-run for {task}: {', '.join(mutable)}")
    return mutations


def _last_epoch_pbt():
    """Tune's PBT, except that a trial's report of its last epoch never makes it exploit another trial, and with
    ``save``/``restore`` so that ``--resume`` keeps its state (:func:`scheduler_state`).

    Tune's PBT exploits on any report, the last included: the trial then restarts from the donor's final checkpoint
    with a perturbed config that trains no epoch, yet becomes the trial's config.yaml (and, for the best trial,
    EXP/best/config.yaml). Subclassed (a private hook, Ray 2.60) because PBT has no option for it; the private names
    it touches are pinned by tests/ray/test_scheduler_state.py.
    """
    import pickle

    from ray.tune.schedulers import PopulationBasedTraining

    class LastEpochStaysPBT(PopulationBasedTraining):
        def __init__(self, *, last_epoch: int, **kwargs):
            super().__init__(**kwargs)
            self.last_epoch = last_epoch
            self._restored: dict[str, object] = {}  # trial id -> its state before a --resume

        # Ray's PBT has no save/restore (ASHA has): what a resume needs is each trial's state (its last score,
        # checkpoint, perturbation time) and the counters, kept by trial id because Tune restores new Trial objects
        def save(self, checkpoint_path: str) -> None:
            state = {"trials": {t.trial_id: s for t, s in self._trial_state.items()},
                     "counters": (self._num_checkpoints, self._num_perturbations, self._next_perturbation_sync)}
            with open(checkpoint_path, "wb") as handle:
                pickle.dump(state, handle)

        def restore(self, checkpoint_path: str) -> None:
            with open(checkpoint_path, "rb") as handle:
                state = pickle.load(handle)
            self._restored = state["trials"]
            self._num_checkpoints, self._num_perturbations, self._next_perturbation_sync = state["counters"]

        def on_trial_add(self, tune_controller, trial) -> None:
            super().on_trial_add(tune_controller, trial)
            if trial.trial_id in self._restored:
                self._trial_state[trial] = self._restored.pop(trial.trial_id)

        def _checkpoint_or_exploit(self, trial, tune_controller, upper_quantile, lower_quantile):
            if (self._trial_state[trial].last_result or {}).get("epoch", -1) >= self.last_epoch:
                lower_quantile = [t for t in lower_quantile if t is not trial]  # still a donor when in the top
            super()._checkpoint_or_exploit(trial, tune_controller, upper_quantile, lower_quantile)

    return LastEpochStaysPBT


def trial_name(trial) -> str:
    """Tune's name of a trial (its status table, its events): the id, and a variant list's name for it."""
    variant = trial.config.get("variant")
    return f"{trial.trial_id}-{variant['name']}" if isinstance(variant, dict) else trial.trial_id


STOPPED_FILE = "stopped.json"  # in a trial's run directory: ASHA stopped it before the search was interrupted


def scheduler_state(scheduler, *, exp: str | None = None):
    """A Tune callback that keeps the trial scheduler's state with the experiment, so ``--resume`` keeps ASHA's rungs.

    Tune 2.60 saves its search algorithm and its callbacks with the experiment state, not its trial scheduler:
    after ``Tuner.restore`` ASHA's rungs are empty and the first trial to report at a rung is always promoted. The
    scheduler's own ``save``/``restore`` (public, implemented by ASHA) go through Tune's callback state
    (``get_state``/``set_state``), written at the same moment as the trials' states, so both describe one instant.
    Schedulers without ``save`` (FIFO) keep no state here; our PBT has one (:func:`_last_epoch_pbt`).

    A trial ASHA had stopped can still be RUNNING in that snapshot (it is taken before the trial's actor is gone):
    Tune would resume it and train past ASHA's decision. On restore, each trial the scheduler stopped gets
    ``EXP/trials/<id>/stopped.json``, and its driver ends at once (:func:`dist_spk.tune.driver.trial_driver`).
    """
    import tempfile

    from ray.tune import Callback

    from dist_spk.runs import storage

    class _SchedulerState(Callback):
        def __init__(self, scheduler, exp):
            self.scheduler, self.exp = scheduler, exp

        def get_state(self) -> dict | None:
            with tempfile.TemporaryDirectory() as folder:
                try:
                    self.scheduler.save(f"{folder}/scheduler.pkl")
                except NotImplementedError:
                    return None
                return {"scheduler": Path(folder, "scheduler.pkl").read_bytes()}

        def set_state(self, state: dict) -> None:
            with tempfile.TemporaryDirectory() as folder:
                Path(folder, "scheduler.pkl").write_bytes(state["scheduler"])
                self.scheduler.restore(f"{folder}/scheduler.pkl")
            for trial_id in sorted(getattr(self.scheduler, "stopped", ())):
                if self.exp is not None:
                    storage.write_text(storage.join(self.exp, "trials", trial_id, STOPPED_FILE),
                                       json.dumps({"stopped_by": type(self.scheduler).__name__}) + "\n")

    return _SchedulerState(scheduler, exp)


def _resumable_asha(**kwargs):
    """Tune's ASHA, remembering which trials it stopped (kept by its own ``save``, which pickles its attributes)."""
    from ray.tune.schedulers import ASHAScheduler, TrialScheduler

    class ResumableASHA(ASHAScheduler):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.stopped: set[str] = set()

        def on_trial_result(self, tune_controller, trial, result):
            decision = super().on_trial_result(tune_controller, trial, result)
            if decision == TrialScheduler.STOP:
                self.stopped.add(trial.trial_id)
            return decision

    return ResumableASHA(**kwargs)


def _scheduler(config, task: str, params: list[Param], metric: str):
    from ray.tune.schedulers import FIFOScheduler

    search = config.search
    if search.trial_scheduler == "asha":
        return _resumable_asha(time_attr="training_iteration", metric=metric, mode="min", max_t=config.trainer.epochs,
                             grace_period=min(search.grace_period, config.trainer.epochs),
                             reduction_factor=search.reduction_factor)
    if search.trial_scheduler == "pbt":
        return _last_epoch_pbt()(last_epoch=config.trainer.epochs - 1, time_attr="training_iteration", metric=metric,
                                 mode="min", perturbation_interval=search.perturbation_interval,
                                 hyperparam_mutations=pbt_mutations(task, params))
    return FIFOScheduler()


def check_search(task: str, config, params: list[Param]) -> None:
    """Every value the space can give is valid, and scheduler and search algorithm can handle the space (checked
    before Ray starts)."""
    check_values(config, params)
    if config.search.trial_scheduler == "pbt":
        pbt_mutations(task, params)
        if config.search.sampler != "random":
            raise ConfigError("search.trial_scheduler=pbt samples and perturbs its own population: use "
                              "search.sampler=random")
    if config.search.sampler == "optuna":
        unsupported = [p.key for p in params if p.kind in ("grid", "normal", "qnormal", "variant")]
        if unsupported:
            raise ConfigError(f"search=optuna cannot sample {', '.join(unsupported)} (grid or normal); use "
                              "values/uniform distributions or search=random")


def warmup_epochs(task: str, config) -> tuple[int, str]:
    """(epochs, what) before a trial trains its final objective: the lr warm-up, and the AAM margin ramp."""
    warmups = [(config.lr_schedule.warmup_epochs, "lr_schedule.warmup_epochs")]
    if task == "spk":
        warmups.append((config.head.margin_warmup_epochs, "head.margin_warmup_epochs"))
    return max(warmups)


def search_warnings(task: str, config) -> list[str]:
    """What is legal but likely to waste the search (printed before it starts)."""
    warmup, key = warmup_epochs(task, config)
    search = config.search
    if search.trial_scheduler == "asha" and search.grace_period <= warmup < config.trainer.epochs:
        # measured in bench/asha.py: on the demo corpus the trials' EER ranks during the margin ramp
        # did not predict their final ranks (Spearman <= 0.05), so ASHA stopped the eventual best
        return [f"search.grace_period={search.grace_period} lets ASHA stop trials before {key}={warmup} is over: "
                f"rankings taken while trials warm up rarely hold; consider search.grace_period={warmup + 1}"]
    return []


def _search_algorithm(config, params: list[Param], metric: str, concurrent: int):
    if config.search.sampler == "random":
        from ray.tune.search.basic_variant import BasicVariantGenerator

        # random sampling (grid values expanded), seeded: the same seed and space give the same trials
        return BasicVariantGenerator(random_state=config.trainer.seed, max_concurrent=concurrent)
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    return ConcurrencyLimiter(OptunaSearch(metric=metric, mode="min", seed=config.trainer.seed),
                              max_concurrent=concurrent)


def run_search(task: str, config, params: list[Param], *, exp_dir: str | Path, resume: bool = False):
    """Search ``params`` around the base ``config``; return Ray Tune's ResultGrid.

    The dataset is checked and the shared data prepared before any Ray resource is taken.
    """
    exp, mirror = storage.normalize(exp_dir), storage.local_mirror(exp_dir)
    remote = storage.is_remote(exp)
    state = storage.join(exp, "tune")
    if remote:
        storage.check_writable(exp)  # credentials, bucket and endpoint, before anything else
    if storage.exists(state) and not resume:
        raise DistSpkError(f"{exp} already holds a search; pass --resume to continue it, or choose another --out")
    if resume and not storage.exists(state):
        raise DistSpkError(f"{exp}: no search to resume (no {state})")
    if not resume and not remote:
        check_new_experiment(Path(exp))
    check_search(task, config, params)
    CHECKS[task](config)
    busy = (f"{exp}: another search is running in this experiment (on this machine); wait for it to end, or "
            "choose another --out")
    with exclusive_or_fail(storage.scratch_dir(exp, kind="locks") / "experiment.lock", busy):
        if not resume and remote:  # this machine's copy of an earlier search at the same URI is not this search's
            shutil.rmtree(mirror, ignore_errors=True)
            mirror.mkdir(parents=True)
        # held in memory until the cluster is known to hold the trials: a refused search leaves no folder
        with internals_to(mirror / LOGS_DIR / DRIVER_LOG, deferred=True) as log:
            return _search(task, config, params, exp=exp, mirror=mirror, resume=resume, log=log)


EXPERIMENT_MARK = ".dist_spk-experiment"  # in every experiment folder a search made


def check_new_experiment(exp: Path) -> None:
    """A new search writes only into a new or empty folder: ``config.yaml``, ``summary.csv``, ``plots/`` and ``best/``
    of whatever else is there would be overwritten."""
    if exp.exists() and (not exp.is_dir() or any(exp.iterdir())):
        raise DistSpkError(f"--out {exp}: exists and is not empty; a search writes config.yaml, space.yaml, "
                           "summary.csv, plots/ and best/ there. Choose a new or empty folder (--resume continues a "
                           "search that ran there)")


def _search(task: str, config, params: list[Param], *, exp: str, mirror: Path, resume: bool, log):
    from ray import tune

    from dist_spk.tune.driver import trial_driver
    from dist_spk.tune.live_view import SearchView, asha_rungs
    from dist_spk.tune.wandb_logging import wandb_callback

    remote = storage.is_remote(exp)
    state = storage.join(exp, "tune")
    logs = mirror / LOGS_DIR
    for warning in search_warnings(task, config):
        print(f"[tune] warning: {warning}", flush=True)
    # what the cluster can become, before anything is written: a trial shape no node type holds is refused here
    local = connect_for_search(config.trainer)
    in_process = trains_in_process(config, local=local, remote=remote)
    concurrent, decided = plan_concurrency(config.trainer, read_cluster_capacity(),
                                           requested=config.search.max_concurrent)
    check_gpu_workers(config.trainer)
    log.open()
    if remote and resume:  # the W&B group and offline runs, what the trials published
        storage.download(exp, mirror, skip=storage.HEAVY)
    mirror.mkdir(parents=True, exist_ok=True)
    (mirror / EXPERIMENT_MARK).write_text("an experiment folder made by dist-spk tune\n")
    save_config(config, mirror)
    space = {"parameters": {p.key: p.to_wandb() for p in params if p.kind != "variant"}}
    if variant_list(params):
        space["variants"] = variant_list(params)
    (mirror / "space.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    extras = PREPARES[task](config, mirror)
    metric = OBJECTIVES[task]
    if remote:  # workers on any node fetch what every trial shares from the store
        extras = {key: storage.relocate(value, mirror, exp) for key, value in extras.items()}
        storage.upload(mirror, exp, skip=(*storage.HEAVY, "trials", "wandb"))
    else:
        check_shared_storage(mirror)
    check_cache_storage(extras.get("training_cache"))
    # in process, a trial holds its worker's resources itself (the same total: concurrency is planned the same way)
    resources = {"cpu": DRIVER_CPUS}
    if in_process:
        bundle = worker_bundle(config.trainer)
        resources = {"cpu": DRIVER_CPUS + bundle.pop("CPU"), **({"gpu": bundle.pop("GPU")} if "GPU" in bundle else {}),
                     **bundle}
    trainable = tune.with_resources(
        tune.with_parameters(trial_driver, task=task, base=to_dict(config), exp_dir=exp, extras=extras,
                             in_process=in_process),
        resources,
    )
    method = "bayes" if config.search.sampler == "optuna" else "random"
    wandb_logger, offline = wandb_callback(config.search.wandb_project, mirror, objective=metric,
                                           base=to_dict(config), location=exp,
                                           sweep=to_wandb_sweep(params, metric=metric, method=method))
    # Tune repeats the grid (and every variant) num_samples times: a space that samples nothing would run identical
    # trials (same config, same seed), so it runs each combination once, or search.repeats times with their own seeds
    num_samples = config.search.num_samples if samples_anything(params) else 1
    params = with_repeats(params, repeats=config.search.repeats, seed=config.trainer.seed)  # unsampled spaces only
    grid = math.prod(len(p.args[0]) for p in params if p.kind in ("grid", "variant"))
    total = num_samples * grid
    search = config.search
    view = SearchView(objective=metric, max_epochs=config.trainer.epochs, total_trials=total,
                      params=[p.key for p in params if p.kind != "constant"], scheduler=search.trial_scheduler,
                      rungs=asha_rungs(grace_period=min(search.grace_period, config.trainer.epochs),
                                       reduction_factor=search.reduction_factor, max_t=config.trainer.epochs)
                      if search.trial_scheduler == "asha" else (), logs_dir=logs)
    storage_path, filesystem = storage.ray_storage(exp)
    if resume:
        tuner = tune.Tuner.restore(storage.ray_storage(state)[0], trainable=trainable, resume_errored=True,
                                   storage_filesystem=filesystem)
    else:
        scheduler = _scheduler(config, task, params, metric)
        tuner = tune.Tuner(
            trainable,
            param_space=to_param_space(params),
            tune_config=tune.TuneConfig(
                scheduler=scheduler,
                # it holds the limit on concurrent trials (Tune ignores max_concurrent_trials given a generator)
                search_alg=_search_algorithm(config, params, metric, concurrent),
                num_samples=num_samples,
                trial_dirname_creator=lambda trial: trial.trial_id,
                trial_name_creator=trial_name,
                reuse_actors=in_process,  # the next trial starts in a process with torch and pyannote imported
            ),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=storage_path,
                storage_filesystem=filesystem,
                callbacks=[wandb_logger, scheduler_state(scheduler, exp=exp), view],
                failure_config=tune.FailureConfig(max_failures=config.search.max_trial_failures),
                # Tune keeps pointers to Train's checkpoints (tune/driver.py): a few for PBT, which exploits
                # other trials' recent ones (Ray warns at <= 2); else the latest is enough
                checkpoint_config=tune.CheckpointConfig(num_to_keep=4 if config.search.trial_scheduler == "pbt" else 1),
                verbose=0,  # the live view (tune/live_view.py) instead of Tune's status tables
            ),
        )
    # Tune's "new output" prints an experiment header even at verbose=0; its classic output prints nothing there
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    print(f"[tune] {total} trials of {task}, {decided}; scheduler {search.trial_scheduler}, sampler {search.sampler}; "
          f"objective {metric} (lower is better)", flush=True)
    print(f"[tune] Ray's, the workers' and W&B's messages: {logs}/ (--verbose shows them here)", flush=True)
    try:
        with capture_worker_output(logs):
            results = tuner.fit()
    finally:
        view.close()
        wandb_logger.close()  # every trial's run file complete (W&B's exit record) before tune returns
    del tuner
    if offline:
        print(f"[tune] W&B runs were written offline to {mirror / 'wandb'}; upload them as a W&B sweep with: "
              f"dist-spk tune sync {exp}  (or as plain runs: wandb sync {mirror / 'wandb'}/offline-run-*)",
              flush=True)
    return results


def tune_task(task: str, config, params: list[Param], *, exp_dir: str | Path, resume: bool = False,
              table: bool = True) -> tuple[list[dict], Path | None]:
    """Run the search, then write ``summary.csv``, ``best/``, the plots and the Optuna study, and print the table;
    return (rows, best dir: in the local mirror when ``exp_dir`` is an object store, uploaded there too)."""
    results = run_search(task, config, params, exp_dir=exp_dir, resume=resume)
    exp, mirror = storage.normalize(exp_dir), storage.local_mirror(exp_dir)
    with internals_to(mirror / LOGS_DIR / DRIVER_LOG):
        return _conclude(task, config, params, results, exp=exp, mirror=mirror, table=table)


def _conclude(task: str, config, params: list[Param], results, *, exp: str, mirror: Path, table: bool
              ) -> tuple[list[dict], Path | None]:
    from dist_spk.tune.plots import draw_report
    from dist_spk.tune.results import export_best, print_table, trial_rows, write_summary
    from dist_spk.tune.wandb_logging import log_experiment

    if storage.is_remote(exp):  # what the workers published
        storage.download(storage.join(exp, "trials"), mirror / "trials", skip=storage.HEAVY)
    exp_dir = mirror
    trials = [(Path(r.path).name, {p.key: p.trial_value(r.config) for p in params}, r.error is not None)
              for r in results]
    objective = OBJECTIVES[task]
    rows = trial_rows(exp_dir, objective=objective, epochs=config.trainer.epochs, trials=trials)
    write_summary(exp_dir, rows)
    if table:
        print_table(rows, objective=objective, params=[p.key for p in params if p.kind != "constant"])
    best = export_best(exp_dir, rows, objective=objective, location=exp)
    if best is not None:  # a search with no scored trial has nothing to plot
        draw_report(exp_dir)  # before the experiment's W&B run, which uploads the plots
    try:
        log_experiment(exp_dir, project=config.search.wandb_project, objective=objective,
                       upload_best=config.search.wandb_upload_best)
    except Exception as err:  # W&B down or slow: the search's results (summary.csv, best/) stand without it
        print(f"[tune] the experiment's W&B run failed ({type(err).__name__}: "
              f"{str(err).splitlines()[0][:200] if str(err) else ''}); summary.csv and best/ are complete", flush=True)
    if storage.is_remote(exp):
        storage.upload(mirror, exp, skip=(*storage.HEAVY, "trials"))
        print(f"[tune] uploaded the summary, best/, plots/ and wandb/ to {exp}", flush=True)
    return rows, best
