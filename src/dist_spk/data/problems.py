"""Dataset problems, reported all at once by the checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One defect in a dataset: the file, the line (1-based, 0 = the whole file) and what is wrong."""

    path: Path
    message: str
    line: int = 0
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else f"{self.path}"
        return f"{where}: {self.severity}: {self.message}"


def format_problems(problems: list[Problem]) -> str:
    """One line per problem, errors first, in a stable order."""
    ordered = sorted(problems, key=lambda p: (p.severity != "error", str(p.path), p.line))
    return "\n".join(str(p) for p in ordered)
