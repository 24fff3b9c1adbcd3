"""``dist-spk doctor``: the cluster checked before a search."""

from __future__ import annotations

from typing import Annotated

import typer

from dist_spk.cli.app import Preset, app


@app.command("doctor")
def doctor(
    out: Annotated[str, typer.Option("--out", "-o", help="Experiment directory to check: on a cluster, the shared "
                                     "storage or object store (s3://...) your searches will write to.")] = ".",
    preset: Preset = "cluster",
    no_scale: Annotated[bool, typer.Option("--no-scale", help="Check only node types that have a node up; never ask "
                                           "the autoscaler for one.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the autoscaler to add a node of a type.")] = 900,
) -> None:
    """Check the cluster (or this machine) before a search: every node type's torch/CUDA/NCCL/driver, audio
    decoding, shared storage, W&B login and the hub token. Exit 1 on any blocker."""
    from dist_spk.launch.doctor import FAIL, render, run_doctor

    rows = run_doctor(out=out, preset=preset, scale=not no_scale, timeout=timeout, progress=typer.echo)
    typer.echo(render(rows), nl=False)
    failed = [row for row in rows if row.status == FAIL]
    if failed:
        typer.echo(f"{len(failed)} blocker(s): " + ", ".join(f"{row.check} on {row.where}" for row in failed))
        raise typer.Exit(1)
    typer.echo("no blocker: the cluster is ready for `ray job submit ... -- python ray_jobs/tune_speaker.py ...`")
