"""``dist-spk report``: an experiment's plots, Optuna study and tables."""

from __future__ import annotations

from typing import Annotated

import typer

from dist_spk.cli.app import app


@app.command("report")
def report(
    exp: Annotated[str, typer.Argument(help="An experiment directory written by 'dist-spk tune' (a path or a URI).")],
    tables: Annotated[bool, typer.Option("--tables", help="Also write the seed-style Markdown/CSV table of every "
                                         "trial's epochs and a comparison table to EXP/report/, and print them.")]
    = False,
) -> None:
    """Draw an experiment's plots into EXP/plots (optimisation history, learning curves, parallel coordinates,
    parameter importance, contour; with optuna.visualization) and write it as an Optuna study, EXP/optuna.journal."""
    from dist_spk.runs import storage
    from dist_spk.tune.plots import draw_report
    from dist_spk.tune.results import mirrored_experiment

    local = mirrored_experiment(exp)
    for path in draw_report(local):
        typer.echo(f"wrote {path}")
    typer.echo(f"wrote {local / 'optuna.journal'}; open it with: optuna-dashboard {local / 'optuna.journal'}")
    if tables:
        from dist_spk.tune.tables import write_tables

        for path in write_tables(local):
            typer.echo(f"\n{path.read_text()}(also {path.with_suffix('.csv')})")
    if storage.is_remote(exp):
        storage.upload(local, exp, skip=(*storage.HEAVY, "trials", "wandb", "data", "cache"))
        typer.echo(f"uploaded the plots, optuna.journal and report/ to {exp}")
