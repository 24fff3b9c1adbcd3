"""Bytes a search writes per epoch, before and after the one-copy checkpoints (issue 17).

The same one-trial search (speaker encoder, ``compact`` corpus, 4 epochs, FIFO) runs twice: with the code of
``BEFORE_REV`` (a git worktree put first on ``PYTHONPATH``; Ray's workers inherit it) and with this tree. ``strace -f``
(seccomp-filtered to the write calls, so the processes are only stopped on those) records every byte every process
of the search writes: the driver, Tune's trial actor, the Train controller and the workers. Bytes are attributed by
the file written (``strace -y`` names it): checkpoint files (``*.ckpt``) and everything else in the experiment
directory (its storage: EFS, NFS, or an object store's uploads), and node-local scratch (temp dirs).

Before: each epoch wrote ``last.ckpt``, a ``best.ckpt`` copy when it improved, a scratch copy for Ray, Ray Train's
copy and Tune's copy. After: Lightning writes the epoch to scratch once, Ray Train uploads it once; ``last``/``best``
and Tune hold pointers.

    python -m bench.checkpoint_bytes            (needs strace; ~3 min)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench.common import CLI, ROOT, WORK, corpus, record

BEFORE_REV = "cc33034"  # the last commit before the change
EPOCHS = 4
# renames too: Lightning (through fsspec) writes a checkpoint to a temp file, then moves it into place
WRITE_CALLS = "write,pwrite64,writev,pwritev,pwritev2,copy_file_range,sendfile,rename,renameat,renameat2"
# pid  call(fd</path>, ...) = bytes ; copy_file_range and sendfile name the written fd third and first
CALL = re.compile(r"^\d+\s+(\w+)\((.*)\)\s+=\s+(\d+)")
FD_PATH = re.compile(r"\d+<([^>]*)>")
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def written_path(call: str, args: str) -> str | None:
    paths = FD_PATH.findall(args)
    if not paths:
        return None
    if call == "copy_file_range":
        return paths[1] if len(paths) > 1 else None
    return paths[0]


def bytes_by_place(log: Path, exp: Path) -> dict[str, int]:
    """Bytes written, by where the file ended up: checkpoints in the experiment, other experiment files, checkpoints
    in node-local scratch. A file's bytes follow it through renames."""
    written: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        match = CALL.match(line)
        if not match:
            continue
        call, args, count = match.group(1), match.group(2), int(match.group(3))
        if call.startswith("rename"):
            paths = QUOTED.findall(args)
            if len(paths) == 2 and paths[0] in written:
                written[paths[1]] = written.get(paths[1], 0) + written.pop(paths[0])
            continue
        path = written_path(call, args)
        if path is not None:
            written[path] = written.get(path, 0) + count
    totals = {"experiment_checkpoints": 0, "experiment_other": 0, "scratch_checkpoints": 0}
    for path, count in written.items():
        is_checkpoint = path.endswith(".ckpt") or ".ckpt." in path
        if path.startswith(str(exp)):
            totals["experiment_checkpoints" if is_checkpoint else "experiment_other"] += count
        elif is_checkpoint:
            totals["scratch_checkpoints"] += count
    return totals


def measure(name: str, src: Path | None) -> dict:
    exp = WORK / f"checkpoint-bytes-{name}"
    shutil.rmtree(exp, ignore_errors=True)
    log = WORK / f"checkpoint-bytes-{name}.strace"
    env = {**os.environ, "WANDB_MODE": "offline"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    data = corpus("compact") / "spk"
    command = ["strace", "-f", "-qq", "-y", "--seccomp-bpf", "-e", f"trace={WRITE_CALLS}", "-o", str(log), *CLI,
               "tune", "spk", "--data", str(data), "--out", str(exp), "--num-samples", "1", "--scheduler", "fifo",
               "--set", f"trainer.epochs={EPOCHS}", "--set", "data.crops_per_epoch=0", "--set", "data.batch_size=64",
               "--set", "data.noise_probability=0", "--set", "data.reverb_probability=0"]
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    totals = bytes_by_place(log, exp)
    log.unlink()
    checkpoint = next(exp.glob("train/*/checkpoint_*/checkpoint.ckpt")).stat().st_size
    return {**{f"{k}_per_epoch": round(v / EPOCHS) for k, v in totals.items()}, "checkpoint_bytes": checkpoint,
            "experiment_checkpoint_copies_per_epoch": round(totals["experiment_checkpoints"] / EPOCHS / checkpoint, 2)}


def main() -> None:
    if shutil.which("strace") is None:
        sys.exit("bench.checkpoint_bytes needs strace (apt-get install strace)")
    before_tree = WORK / "before-one-copy"
    if not (before_tree / "src").is_dir():
        subprocess.run(["git", "-C", str(ROOT.parent), "worktree", "add", "--detach", str(before_tree), BEFORE_REV],
                       check=True, stdout=subprocess.DEVNULL)
    before = measure("before", before_tree / "src")
    after = measure("after", None)
    figures = {"before": before, "after": after,
               "experiment_checkpoint_bytes_per_epoch_ratio_after_vs_before": round(
                   after["experiment_checkpoints_per_epoch"] / before["experiment_checkpoints_per_epoch"], 3),
               "all_checkpoint_bytes_per_epoch_ratio_after_vs_before": round(
                   (after["experiment_checkpoints_per_epoch"] + after["scratch_checkpoints_per_epoch"])
                   / (before["experiment_checkpoints_per_epoch"] + before["scratch_checkpoints_per_epoch"]), 3),
               "epochs": EPOCHS, "before_rev": BEFORE_REV}
    record("checkpoint_bytes", figures, command="python -m bench.checkpoint_bytes")


if __name__ == "__main__":
    main()
