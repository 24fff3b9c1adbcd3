"""``dist-spk demo``: the main job on the built-in synthetic corpus (dist_spk.demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dist_spk.cli.app import Verbose, app


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option(help="Demo folder: corpus/ and the runs.")] = Path("demo"),
    size: Annotated[str, typer.Option(help="Corpus size: tiny, compact, small or medium.")] = "small",
    seed: Annotated[int, typer.Option()] = 0,
    verbose: Verbose = False,
) -> None:
    """Run the main job locally on the built-in synthetic corpus (generated on first use)."""
    from dist_spk.console import Stages, internals_to, set_verbose
    from dist_spk.demo import run_demo

    set_verbose(verbose)
    stages = Stages("demo", 6)
    with internals_to(out / "logs" / "demo.log") as log:
        typer.echo(f"[demo] what the libraries say (Ray, Lightning, pyannote, W&B, warnings): {log.path}; each "
                   "search's own: its logs/ folder; --verbose shows them here")
        run_demo(stages, out, size=size, seed=seed, echo=typer.echo)


