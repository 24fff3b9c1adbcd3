"""``dist-spk config``: show a resolved config, list the presets."""

from __future__ import annotations

import typer

from dist_spk.cli.app import ConfigFile, Overrides, Preset, Task, config_app


@config_app.command("show")
def config_show(task: Task, preset: Preset = "local", config: ConfigFile = None, overrides: Overrides = None) -> None:
    """Print the resolved config (preset < --config file < --set) as YAML."""
    from dist_spk.config import dump_config, load_config

    typer.echo(dump_config(load_config(task, preset_name=preset, file=config, overrides=overrides or [])), nl=False)


@config_app.command("presets")
def config_presets() -> None:
    """List the presets of each task."""
    from dist_spk.config import PRESETS

    for task, presets in PRESETS.items():
        for name, make in presets.items():
            typer.echo(f"{task:4} {name:8} {(make.__doc__ or '').strip().splitlines()[0]}")
