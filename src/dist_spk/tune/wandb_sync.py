"""``dist-spk tune sync EXP``: a search that logged offline, uploaded later as a W&B sweep.

Offline (no key, or no route to the server from the cluster), a search writes W&B's offline run files under
``EXP/wandb``; ``wandb sync`` uploads those runs but cannot make them a sweep (the sweep's id comes from the
server, and W&B's run files cannot be re-pointed). Everything a trial's run holds is also in the experiment
folder (each trial's ``config.yaml``, ``metrics.jsonl`` and ``steps.jsonl``), so ``tune sync`` does what the
search would have done online: registers the search as a sweep W&B does not schedule (as
:func:`dist_spk.tune.wandb_logging.register_sweep`), logs every trial into a run of that sweep (same run ids,
group, config, epoch rows, step rows and best-value summary as an online search), then the experiment's own
run and workspace. Use it *instead of* ``wandb sync`` for an experiment (both would write the same run ids).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from dist_spk.config import read_config_file
from dist_spk.errors import DistSpkError
from dist_spk.runs.run_dir import STEPS_FILE, read_metrics
from dist_spk.tune.wandb_logging import experiment_group, flatten, log_epoch, metrics_of, open_run


def replay_trial(exp_dir: Path, trial_id: str, *, status: str, project: str, objective: str, offline: bool,
                 sweep_id: str | None, variant: str = "") -> Path:
    """Log one trial from its run directory into its W&B run (as :class:`TrialRuns` would have); return the
    run's folder. Each epoch's step rows go before the epoch's row, as they streamed during the search."""
    trial_dir = Path(exp_dir) / "trials" / trial_id
    group = experiment_group(Path(exp_dir))
    config = flatten(read_config_file(trial_dir / "config.yaml"))
    steps = read_metrics(trial_dir, name=STEPS_FILE)
    run = open_run(folder=exp_dir, offline=offline, objective=objective, sweep_id=sweep_id, project=project,
                   group=group, job_type="trial", name=f"{trial_id}-{variant}" if variant else trial_id,
                   id=f"{group}-{trial_id}", resume="allow",
                   config=config)
    best = math.inf
    try:
        for row in read_metrics(trial_dir):
            while steps and steps[0].get("epoch", 0) <= row["epoch"] + 1:
                run.log(metrics_of(steps.pop(0)))  # the numbers TrialRuns logs from a result, the same way
            best = log_epoch(run, metrics_of(row), objective=objective, best=best)
        for step in steps:
            run.log(metrics_of(step))
    finally:
        run.finish(exit_code=1 if status == "error" else 0)
    return Path(run.dir).parent


def sync_experiment(exp_dir: Path, *, project: str | None = None) -> str:
    """Upload an offline experiment as a W&B sweep; return the sweep's id."""
    from dist_spk.launch.run import task_ranked_by
    from dist_spk.tune.results import read_summary
    from dist_spk.tune.space import parse_space, to_wandb_sweep
    from dist_spk.tune.wandb_logging import log_experiment, logs_offline, register_sweep, server_url, wandb_key

    exp_dir = Path(exp_dir)
    rows, objective, _ = read_summary(exp_dir)
    task = task_ranked_by(objective, source=str(exp_dir / "summary.csv"))
    base = read_config_file(exp_dir / "config.yaml")
    params = parse_space(read_config_file(exp_dir / "space.yaml"), task, source=str(exp_dir / "space.yaml"))
    project = project or base.get("search", {}).get("wandb_project") or "dist-spk"
    if logs_offline():
        key, _ = wandb_key()
        why = "no W&B key (set WANDB_API_KEY or run 'wandb login')" if not key else \
            f"W&B server {server_url()} is unreachable (or WANDB_MODE=offline)"
        raise DistSpkError(f"tune sync uploads to W&B, but {why}")
    method = "bayes" if base.get("search", {}).get("search") == "optuna" else "random"
    sweep_id = register_sweep(exp_dir, to_wandb_sweep(params, metric=objective, method=method), project=project)
    for row in rows:
        replay_trial(exp_dir, row["trial_id"], status=row["status"], project=project, objective=objective,
                     offline=False, sweep_id=sweep_id, variant=row.get("variant", ""))
        print(f"[tune] uploaded trial {row['trial_id']} into sweep {sweep_id}", flush=True)
    log_experiment(exp_dir, project=project, objective=objective,
                   upload_best=bool(base.get("search", {}).get("wandb_upload_best", True)))
    record = json.loads((exp_dir / "wandb" / "experiment.json").read_text())
    print(f"[tune] {len(rows)} trial runs in sweep {sweep_id} (group {record['group']})", flush=True)
    return sweep_id
