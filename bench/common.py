"""Shared by the benchmarks: the machine, the versions, a corpus, and results.json.

Every figure is a ratio of two measurements taken in the same run, on the same machine, model and
data (the machines are shared and noisy: absolute times are reported, but only ratios are goals).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results.json"
WORK = Path(os.environ.get("BENCH_WORK", "/tmp/dist_spk-bench"))
CLI = [sys.executable, "-c", "from dist_spk.cli import main; main()"]
PACKAGES = ("torch", "torchaudio", "pyannote.audio", "speechbrain", "ray", "lightning", "optuna", "wandb", "numpy")


def machine() -> dict:
    return {"platform": platform.platform(), "cpu_count": os.cpu_count(), "processor": platform.processor(),
            "python": platform.python_version(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def versions() -> dict:
    return {name: metadata.version(name) for name in PACKAGES}


def corpus(size: str = "small") -> Path:
    """The synthetic corpus the benchmarks share (generated once)."""
    out = WORK / f"corpus-{size}"
    if not (out / "corpus.json").is_file():
        subprocess.run([*CLI, "data", "synth", str(out), "--size", size], check=True)
    return out


def run(args: list[str], *, env: dict | None = None) -> float:
    """Run a dist-spk command; its wall time in seconds (a failure stops the benchmark)."""
    started = time.perf_counter()
    subprocess.run([*CLI, *args], check=True, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def record(name: str, figures: dict, *, command: str) -> None:
    """Merge one benchmark's figures into results.json (re-running one benchmark keeps the others)."""
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results.setdefault("benchmarks", {})[name] = {"figures": figures, "command": command,
                                                  "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    results["machine"] = machine()
    results["versions"] = versions()
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({name: figures}, indent=1), flush=True)
