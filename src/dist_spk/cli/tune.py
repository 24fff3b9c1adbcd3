"""``dist-spk tune``: searches, W&B sweep export and sync."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dist_spk.cli.app import ConfigFile, Overrides, Preset, Task, Verbose, resolve_config, tune_app
from dist_spk.config.registry import TASKS
from dist_spk.errors import DistSpkError

Space = Annotated[Path | None, typer.Option(help="Search-space YAML (W&B sweep or Tune syntax, or a variants: list), "
                                            "or a shipped space's name (seed_segmentation_variants, "
                                            "seed_speaker_optuna); default: the shipped space of the task.")]


def _tune(task: str, data: Path, out: str, preset: str, space: Path | None, num_samples: int | None,
          scheduler: str | None, search: str | None, workers_per_trial: int | None, gpus_per_worker: float | None,
          max_concurrent: int | None, resume: bool, config: Path | None, overrides: list[str] | None) -> None:
    from dist_spk.config import read_config_file
    from dist_spk.launch.run import OBJECTIVES
    from dist_spk.runs import storage
    from dist_spk.tune.runner import tune_task
    from dist_spk.tune.space import grid_of, parse_space, space_path, sweep_overrides

    path = space_path(space, task)
    document = read_config_file(path)
    # the file's method / early_terminate first: --set and the dedicated flags override them
    overrides = [*sweep_overrides(document, objective=OBJECTIVES[task], source=str(path)), *(overrides or [])]
    keys = {"data.root": data.resolve(), "search.num_samples": num_samples, "search.trial_scheduler": scheduler,
            "search.sampler": search, "trainer.workers": workers_per_trial, "trainer.gpus_per_worker": gpus_per_worker,
            "search.max_concurrent": max_concurrent}
    resolved = resolve_config(task, preset, config, overrides, **keys)
    params = grid_of(parse_space(document, task, source=str(path)), document)
    rows, best = tune_task(task, resolved, params, exp_dir=out, resume=resume)
    stopped = sum(r["status"] == "stopped early" for r in rows)
    exp = storage.normalize(out)
    typer.echo(f"{len(rows)} trials ({stopped} stopped early); {storage.join(exp, 'summary.csv')}; best: "
               f"{storage.join(exp, 'best') if best else 'none'}; plots: {storage.join(exp, 'plots')}; Optuna study: "
               f"optuna-dashboard {storage.local_mirror(exp) / 'optuna.journal'}")
    if best is None:
        raise typer.Exit(1)


def _tune_command(task: str, objective: str):
    """The ``dist-spk tune <task>`` command: both tasks take the same options."""

    def command(
        data: Annotated[Path, typer.Option("--data", "-d", help="Dataset: a seed-layout folder or database.yml "
                                           "(seg); a VoxCeleb/Kaldi folder, CSV or seed layout (spk).")],
        out: Annotated[str, typer.Option("--out", "-o", help="Experiment directory: a path, or an object-store URI "
                                         "(s3://bucket/exp, gs://...) for a cluster without a shared file system.")],
        preset: Preset = None, space: Space = None,
        num_samples: Annotated[int | None, typer.Option(help="Trials (default: the preset's).")] = None,
        scheduler: Annotated[str | None, typer.Option(help="asha, fifo or pbt (population based training).")] = None,
        search: Annotated[str | None, typer.Option(help="random or optuna (TPE).")] = None,
        workers_per_trial: Annotated[int | None, typer.Option(help="Ray Train workers per trial.")] = None,
        gpus_per_worker: Annotated[float | None, typer.Option(help="GPUs per worker (with trainer.use_gpu).")] = None,
        max_concurrent: Annotated[int | None, typer.Option(help="Most trials at once (default: what the cluster can "
                                                           "grow to; its autoscaler adds nodes for the rest).")] = None,
        resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted search in --out.")] = False,
        config: ConfigFile = None, overrides: Overrides = None, verbose: Verbose = False,
    ) -> None:
        from dist_spk.console import set_verbose

        set_verbose(verbose)
        _tune(task, data, out, preset, space, num_samples, scheduler, search, workers_per_trial, gpus_per_worker,
              max_concurrent, resume, config, overrides)

    command.__doc__ = f"Search {objective[0]} hyper-parameters (objective: {objective[1]}, lower is better)."
    return command


tune_app.command("seg")(_tune_command("seg", ("segmentation fine-tuning", TASKS["seg"].objective)))
tune_app.command("spk")(_tune_command("spk", ("speaker-encoder", TASKS["spk"].objective)))


@tune_app.command("export-sweep")
def tune_export_sweep(
    task: Task,
    space: Space = None,
    method: Annotated[str, typer.Option(help="W&B sweep method: random, grid or bayes.")] = "bayes",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (default: print).")] = None,
    data: Annotated[str | None, typer.Option("--data", "-d", help="Dataset the agent's runs train on (default: the "
                                             "agent's $DIST_SPK_DATA).")] = None,
    runs_dir: Annotated[str | None, typer.Option(help="Folder of the agent's runs, one subfolder per W&B run "
                                                 "(default runs/sweep-TASK).")] = None,
    preset: Preset = "local",
    early_terminate: Annotated[bool, typer.Option(help="W&B hyperband early stopping, rungs as the preset's ASHA "
                                                  "(min_iter = search.grace_period, eta = reduction_factor).")] = True,
) -> None:
    """Write the W&B sweep equivalent to a search space, runnable as is by `wandb sweep` + `wandb agent`."""
    from dist_spk.config import load_config
    from dist_spk.launch.run import OBJECTIVES
    from dist_spk.tune.space import dump_sweep, load_space, space_path, sweep_command

    if task not in OBJECTIVES:
        raise DistSpkError(f"unknown task {task!r}; valid: {', '.join(OBJECTIVES)}")
    search = load_config(task, preset_name=preset).search
    rungs = {"type": "hyperband", "min_iter": search.grace_period, "eta": search.reduction_factor}
    command = sweep_command(task, preset=preset, data=data, runs_dir=runs_dir or f"runs/sweep-{task}")
    text = dump_sweep(load_space(space_path(space, task), task), metric=OBJECTIVES[task], method=method,
                      command=command, early_terminate=rungs if early_terminate else None)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}; run it with: wandb sweep {out}  then  wandb agent <entity/project/sweep id>")


@tune_app.command("sync")
def tune_sync(
    exp: Annotated[str, typer.Argument(help="A search written by 'dist-spk tune' (offline W&B): a path or a URI.")],
    project: Annotated[str | None, typer.Option(help="W&B project (default: the search's search.wandb_project).")]
    = None,
) -> None:
    """Upload a search that logged to W&B offline as a W&B sweep: one run per trial joining the sweep, the
    experiment's run and its workspace. Use it instead of 'wandb sync' for the experiment's runs."""
    from dist_spk.tune.results import mirrored_experiment
    from dist_spk.tune.wandb_sync import sync_experiment

    sync_experiment(mirrored_experiment(exp), project=project)
