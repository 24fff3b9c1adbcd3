"""Files written whole or not at all: through a temporary file beside the target and a rename (a crash or a full disk
leaves the old file or the new one, never half of one). Ray-free: every layer writes through it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """The temporary path to write ``path``'s new content to; renamed onto ``path`` when the block succeeds, removed
    when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        yield partial
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)


def write_text(path: Path, text: str) -> Path:
    """``path`` holding ``text``, written whole or not at all."""
    with replacing(path) as partial:
        partial.write_text(text)
    return Path(path)
