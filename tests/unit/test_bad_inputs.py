"""Bad input, table-driven: every case is exit status 2, an ``error:`` naming the file, line or key, no traceback,
and every path the command was given is byte-identical afterwards (nothing deleted, nothing half-written)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
import torch

from tests.conftest import CLI, make_seed_dataset, write_tone


def tree_hash(path: Path) -> str:
    """Every file under ``path`` (or ``path`` itself) by relative name and bytes; absent paths hash as absent."""
    digest = hashlib.sha256()
    if not path.exists():
        return "absent"
    for item in sorted([path] if path.is_file() else path.rglob("*")):
        if item.is_file():
            digest.update(str(item.relative_to(path.parent)).encode() + b"\0" + item.read_bytes())
    return digest.hexdigest()


class Evil:
    def __init__(self, witness: Path):
        self.witness = witness

    def __reduce__(self):
        return (os.system, (f"touch {self.witness}",))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """One tree holding every bad input the table uses."""
    root = tmp_path_factory.mktemp("bad")
    make_seed_dataset(root / "diar")
    for number, speaker in enumerate(("alice", "bob", "carol", "dave")):
        for index in range(2):
            write_tone(root / "spk" / speaker / "s1" / f"{index}.wav", 0.8, seed=number * 2 + index)
    (root / "spk" / "manifest.json").write_text('{"audio_filepath": "alice/s1/0.wav"}\n')  # as NeMo's datasets do
    (root / "trials.txt").write_text("the user's own trial list\n")
    (root / "segments.csv").write_text("the user's own segments\n")
    (root / "database.yml").write_text("the user's own protocol\n")
    (root / "exp").mkdir()
    (root / "exp" / "summary.csv").write_text("a user's own table\n")
    (root / "rttm").mkdir()
    (root / "rttm" / "ref.rttm").write_text("SPEAKER ref 1 0.0 1.0 <NA> <NA> a <NA> <NA>\n")
    (root / "export").mkdir()
    (root / "export" / "README.md").write_text("notes\n")
    times = root / "times.csv"
    times.write_text("path,speaker,start,end\nspk/alice/s1/0.wav,alice,0,nan\nspk/bob/s1/0.wav,bob,-1,0.5\n"
                     "spk/carol/s1/0.wav,carol,0.6,0.2\n")
    (root / "latin.csv").write_bytes("path,speaker\nspk/alice/s1/0.wav,Jos\xe9\n".encode("latin-1"))
    torch.save({"state_dict": {}, "pyannote.audio": {"v": Evil(root / "code-ran")}}, root / "evil.ckpt")
    spaces = {"nan.yaml": "parameters:\n  optim.lr: {distribution: uniform, min: .nan, max: 0.01}\n",
              "q0.yaml": "parameters:\n  head.margin: {distribution: q_uniform, min: 0.1, max: 0.4, q: 0}\n",
              "negative.yaml": "parameters:\n  optim.lr: {distribution: uniform, min: -0.001, max: 0.01}\n",
              "huge.yaml": "method: grid\nparameters:\n  optim.lr: {distribution: q_uniform, min: 0.0001, max: 1.0, "
                           "q: 1.0e-9}\n"}
    for name, text in spaces.items():
        (root / name).write_text(text)
    return root


# (name, arguments with {root}, the words the error must hold, paths (under root) that must stay identical)
CASES = [
    ("prepare a cache over the dataset itself", ["data", "prepare", "{root}/spk", "--out", "{root}/spk"],
     "dataset's own files", ["spk"]),
    ("trials over an existing file", ["data", "trials", "{root}/spk", "-o", "{root}/trials.txt"], "--force",
     ["trials.txt"]),
    ("segments over an existing file", ["data", "segments", "{root}/diar", "-o", "{root}/segments.csv"], "--force",
     ["segments.csv"]),
    ("protocol over an existing file", ["data", "protocol", "{root}/diar", "-o", "{root}/database.yml"], "--force",
     ["database.yml"]),
    ("a search into a folder of other files", ["tune", "spk", "--data", "{root}/spk", "--out", "{root}/exp"],
     "not empty", ["exp"]),
    ("nan learning rate", ["train", "spk", "--data", "{root}/spk", "--out", "{root}/r1", "--set", "optim.lr=nan"],
     "optim.lr", ["spk"]),
    ("infinite margin", ["train", "spk", "--data", "{root}/spk", "--out", "{root}/r2", "--set", "head.margin=inf"],
     "head.margin", ["spk"]),
    ("nan weight decay in a search", ["tune", "seg", "--data", "{root}/diar", "--out", "{root}/e1", "--set",
                                      "optim.weight_decay=nan"], "optim.weight_decay", ["diar"]),
    ("a space with a nan bound", ["tune", "spk", "--data", "{root}/spk", "--out", "{root}/e2", "--space",
                                  "{root}/nan.yaml"], "finite", ["spk"]),
    ("a space with q 0", ["tune", "spk", "--data", "{root}/spk", "--out", "{root}/e3", "--space", "{root}/q0.yaml"],
     "q must be > 0", ["spk"]),
    ("a space reaching a negative lr", ["tune", "spk", "--data", "{root}/spk", "--out", "{root}/e4", "--space",
                                        "{root}/negative.yaml"], "optim.lr: must be > 0", ["spk"]),
    ("a grid of a billion points", ["tune", "spk", "--data", "{root}/spk", "--out", "{root}/e5", "--space",
                                    "{root}/huge.yaml"], "at most 10,000", ["spk"]),
    ("times that are nan, negative or reversed", ["train", "spk", "--data", "{root}/times.csv", "--out",
                                                  "{root}/r3"], "times.csv:2", ["times.csv"]),
    ("a latin-1 CSV", ["train", "spk", "--data", "{root}/latin.csv", "--out", "{root}/r4"], "latin.csv:2",
     ["latin.csv"]),
    ("credentials in a storage URI", ["train", "spk", "--data", "{root}/spk", "--out",
                                      "s3://AKIAEXAMPLE:s3cr3t@bucket/run", "--workers", "1"], "credentials", ["spk"]),
    ("a code-running pickle as --segmentation", ["evaluate", "pipeline", "--segmentation", "{root}/evil.ckpt",
                                                 "--embedding", "{root}/evil.ckpt", "--data", "{root}/diar",
                                                 "--out", "{root}/p.json"], "evil.ckpt", ["evil.ckpt"]),
    ("a code-running pickle as model.init", ["train", "seg", "--data", "{root}/diar", "--out", "{root}/r5",
                                             "--set", "model.init={root}/evil.ckpt"], "evil.ckpt", ["diar"]),
    ("hypotheses into a folder of reference RTTMs", ["evaluate", "pipeline", "--segmentation", "{root}/evil.ckpt",
                                                     "--embedding", "{root}/evil.ckpt", "--data", "{root}/diar",
                                                     "--rttm-dir", "{root}/rttm"], "--rttm-dir", ["rttm"]),
    ("an export over a user's folder", ["evaluate", "pipeline", "--segmentation", "{root}/evil.ckpt", "--embedding",
                                        "{root}/evil.ckpt", "--data", "{root}/diar", "--export", "{root}/export"],
     "already holds README.md", ["export"]),
    ("diarize with an impossible speaker range", ["diarize", "{root}/diar/test/wav", "--pipeline", "{root}/export",
                                                  "--out", "{root}/d1", "--min-speakers", "3", "--max-speakers",
                                                  "2"], "--min-speakers", ["export"]),
]


@pytest.mark.parametrize("name, args, words, kept", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_one_clear_error_and_touches_nothing(inputs, name, args, words, kept):
    argv = [arg.format(root=inputs) for arg in args]
    before = {path: tree_hash(inputs / path) for path in kept}
    outputs = [Path(a) for a in argv if a.startswith(str(inputs)) and not Path(a).exists()]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    cwd = inputs / "cwd"  # where a default output (./rttm, ./logs) would land
    cwd.mkdir(exist_ok=True)
    listing = sorted(os.listdir(inputs)), sorted(os.listdir(cwd))
    result = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=300, env=env, cwd=cwd)
    assert result.returncode == 2, (name, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr + result.stdout, name
    assert result.stderr.startswith("error:") and words in result.stderr, (name, result.stderr)
    assert "s3cr3t" not in result.stderr + result.stdout
    assert {path: tree_hash(inputs / path) for path in kept} == before, name
    assert not [str(p) for p in outputs if p.exists()], name  # nothing half-written where an output was named
    assert not (inputs / "code-ran").exists()
    assert (sorted(os.listdir(inputs)), sorted(os.listdir(cwd))) == listing, name  # no log folder, no default output
