"""Model cards: the ``README.md`` every product of dist_spk carries (an exported pipeline, encoder or PLDA).

A card says what the model was trained on (dataset path and a content fingerprint), how good it is beside trivial
baselines, which search it came from (experiment folder, W&B group / sweep / workspace, best trial and its
hyper-parameters), the versions it was made with, and the lines that use it. Ray-free: every layer may write one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

ANNOTATION_SUFFIXES = (".txt", ".rttm", ".uem", ".lst", ".scp", ".csv", ".yml", ".yaml", "utt2spk", "segments")
VERSIONED = ("dist-spk", "pyannote.audio", "torch", "torchaudio", "speechbrain", "lightning")


def versions() -> dict[str, str]:
    """The installed versions of the packages a product depends on."""
    found = {}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def dataset_fingerprint(root: str | Path) -> dict[str, Any]:
    """A SHA-256 fingerprint of a dataset: every annotation file (lists, RTTM, UEM, trial lists, CSV, Kaldi
    files) by content, every other file (the audio) by relative path and size; plus the file count and bytes.

    Audio is fingerprinted by size, not content, so a dataset of hundreds of hours is fingerprinted in seconds; a
    re-encoded or swapped file of the same size is not detected (a renamed, added, removed or resized one is)."""
    root = Path(root)
    if root.is_file():  # a database.yml or a CSV
        return {"sha256": hashlib.sha256(root.read_bytes()).hexdigest(), "files": 1, "bytes": root.stat().st_size,
                "covers": "the file's content"}
    digest, files, size = hashlib.sha256(), 0, 0
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # pyannote's cache, our marks
        for name in sorted(n for n in names if not n.startswith(".")):
            path = Path(folder) / name
            stat = path.stat()
            relative = path.relative_to(root).as_posix()
            if name.endswith(ANNOTATION_SUFFIXES):
                digest.update(f"{relative}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
            else:
                digest.update(f"{relative}\0{stat.st_size}\n".encode())
            files, size = files + 1, size + stat.st_size
    return {"sha256": digest.hexdigest(), "files": files, "bytes": size,
            "covers": "annotation files by content, audio by path and size"}


@dataclass
class Provenance:
    """Where a trained model came from: its run (or a search's ``best/``), the data it trained on, the search."""

    checkpoint: str
    data: str = ""
    experiment: str = ""
    trial_id: str = ""
    hyper_parameters: dict[str, Any] = field(default_factory=dict)
    best_metrics: dict[str, Any] = field(default_factory=dict)
    searched: dict[str, str] = field(default_factory=dict)  # the best trial's values of the searched keys
    wandb: dict[str, str] = field(default_factory=dict)


def provenance(checkpoint: str | Path, config_dir: Path | None) -> Provenance:
    """What the folder holding a checkpoint's ``config.yaml`` says about it (a run directory or ``EXP/best``)."""
    found = Provenance(checkpoint=str(checkpoint))
    if config_dir is None:
        return found
    config = yaml.safe_load((config_dir / "config.yaml").read_text()) or {}
    found.data = str((config.get("data") or {}).get("root", ""))
    found.hyper_parameters = {section: values for section, values in config.items()
                              if section not in ("data", "search") and isinstance(values, dict)}
    for name in ("metrics.json", "summary.json"):  # EXP/best, a run
        path = config_dir / name
        if path.is_file():
            record = json.loads(path.read_text())
            found.trial_id = str(record.get("trial_id", ""))
            found.best_metrics = record.get("best") or {}
            break
    exp = config_dir.parent if config_dir.name == "best" else None
    if exp is not None and (exp / "summary.csv").is_file():
        found.experiment = str(exp.resolve())
        found.searched = _searched(exp / "summary.csv", found.trial_id)
        record = exp / "wandb" / "experiment.json"
        if record.is_file():
            found.wandb = {k: str(v) for k, v in json.loads(record.read_text()).items()
                           if k in ("group", "sweep_id", "workspace")}
            found.wandb["project"] = str((config.get("search") or {}).get("wandb_project", ""))
            if "sweep_id" not in found.wandb and not found.wandb.get("workspace"):
                found.wandb["runs"] = f"offline, in {exp / 'wandb'} (wandb sync uploads them)"
    return found


def _searched(summary: Path, trial_id: str) -> dict[str, str]:
    """The searched keys' values of ``trial_id`` in a search's ``summary.csv`` (its columns after the fixed ones)."""
    import csv

    with summary.open(newline="") as handle:
        row = next((r for r in csv.DictReader(handle) if r.get("trial_id") == trial_id), None)
    fixed = {"trial_id", "status", "epochs", "best_epoch"}
    return {k: v for k, v in (row or {}).items() if k not in fixed and not k.startswith("best_") and v != ""}


def markdown_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    """A markdown table (a card's figures beside their baselines)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def provenance_section(title: str, source: Provenance, *, fingerprint: bool = True) -> str:
    """A card section on one model: checkpoint, training data (with its fingerprint), search, best trial."""
    lines = [f"### {title}", "", f"- checkpoint: `{source.checkpoint}`"]
    if source.data:
        lines.append(f"- trained on: `{source.data}`")
        if fingerprint and Path(source.data).exists():
            print_ = dataset_fingerprint(source.data)
            lines.append(f"  (sha256 `{print_['sha256'][:16]}...` over {print_['files']} files, "
                         f"{print_['bytes'] / 1e6:.1f} MB; {print_['covers']})")
    if source.experiment:
        lines.append(f"- search: `{source.experiment}` (best trial `{source.trial_id}`)")
        if source.searched:
            lines.append("- the best trial's searched hyper-parameters: "
                         + ", ".join(f"`{k}={v}`" for k, v in source.searched.items()))
    for key, value in source.wandb.items():
        lines.append(f"- W&B {key}: {value}")
    metrics = {k: v for k, v in source.best_metrics.items() if isinstance(v, int | float) and k != "epoch"}
    if metrics:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in list(metrics.items())[:8])
        lines.append(f"- its best validation epoch ({source.best_metrics.get('epoch', '?')}): {shown}")
    if source.hyper_parameters:
        lines += ["", "<details><summary>hyper-parameters</summary>", "", "```yaml",
                  yaml.safe_dump(source.hyper_parameters, sort_keys=True).rstrip(), "```", "", "</details>"]
    return "\n".join(lines)


def render_card(title: str, summary: str, sections: list[str], usage: str, *, language: str = "python") -> str:
    """A model card: title, one paragraph, the sections, how to use it (a ``language`` code block), versions."""
    stamp = markdown_table([(name, version) for name, version in versions().items()], ("package", "version"))
    body = [f"# {title}", "", summary, "", *sections, "", "## Use it", "", f"```{language}",
            usage.strip(), "```", "", "## Made with", "", stamp, ""]
    return "\n".join(body)

