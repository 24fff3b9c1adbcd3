"""Verification trial lists in the VoxCeleb format: ``<1|0> <enroll path> <test path>`` per line.

Paths are relative to the speaker dataset's root, as in VoxCeleb1's ``veri_test2.txt``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dist_spk.data.problems import Problem


@dataclass(frozen=True)
class Trial:
    """One verification trial: ``target`` is True when both utterances share a speaker."""

    target: bool
    enroll: str
    test: str
    line: int = 0


def parse_trials(path: Path) -> tuple[list[Trial], list[Problem]]:
    """Read a trial list; every malformed line is a :class:`Problem` naming its number."""
    trials: list[Trial] = []
    problems: list[Problem] = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 3:
            problems.append(Problem(path, f"expected '<1|0> <enroll> <test>', found {len(fields)} fields", number))
        elif fields[0] not in ("0", "1"):
            problems.append(Problem(path, f"label must be 1 (target) or 0 (non-target), found {fields[0]!r}", number))
        else:
            trials.append(Trial(fields[0] == "1", fields[1], fields[2], number))
    if not trials and not problems:
        problems.append(Problem(path, "empty trial list"))
    return trials, problems


def format_trials(trials: list[Trial]) -> str:
    return "".join(f"{int(t.target)} {t.enroll} {t.test}\n" for t in trials)


def balanced_trials(
    utterances: dict[str, list[str]], *, rng: np.random.Generator, max_per_class: int = 20000
) -> list[Trial]:
    """A balanced trial list: as many non-target as target trials, at most ``max_per_class`` each.

    Parameters
    ----------
    utterances
        Speaker -> utterance paths, for speakers held out of training (at least two, and at least
        one speaker with two utterances).
    rng
        Source of randomness; the same generator state gives the same list.
    max_per_class
        Cap on target (and so on non-target) trials; targets are subsampled beyond it.
    """
    speakers = sorted(s for s in utterances if utterances[s])
    targets = [(a, b) for s in speakers for a, b in itertools.combinations(sorted(utterances[s]), 2)]
    if len(speakers) < 2 or not targets:
        raise ValueError("balanced trials need at least two speakers and one speaker with two utterances")
    if len(targets) > max_per_class:
        targets = [targets[i] for i in sorted(rng.choice(len(targets), size=max_per_class, replace=False))]
    owner = {u: s for s in speakers for u in utterances[s]}
    pool = sorted(owner)
    nontargets: set[tuple[str, str]] = set()
    possible = (len(pool) ** 2 - sum(len(utterances[s]) ** 2 for s in speakers)) // 2
    wanted = min(len(targets), possible)
    while len(nontargets) < wanted:  # rejection sampling: non-target pairs are the large majority
        a, b = rng.choice(len(pool), size=2, replace=False)
        if owner[pool[a]] != owner[pool[b]]:
            nontargets.add(tuple(sorted((pool[a], pool[b]))))
    trials = [Trial(True, a, b) for a, b in targets] + [Trial(False, a, b) for a, b in sorted(nontargets)]
    return [trials[i] for i in rng.permutation(len(trials))]
