"""One lock per thing two processes must not build at once (an experiment, a cache): an advisory ``flock`` on a
lock file beside it, released when the holder exits, however it exits (a killed process never leaves a stale lock)."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold the lock file ``path`` (created if missing) while inside; a second holder waits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


@contextlib.contextmanager
def exclusive_or_fail(path: Path, busy: str) -> Iterator[None]:
    """Hold ``path`` while inside, or raise at once (``busy``: the error's message) when another process holds it."""
    from dist_spk.errors import DistSpkError

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DistSpkError(busy) from None
        yield
