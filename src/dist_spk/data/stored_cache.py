"""Training caches on an object store (``data.cache=s3://bucket/caches/vox``, ``data prepare --out s3://...``).

A cache is memory-mapped, so training reads it from a local file. A stored cache is prepared on the machine that runs
``data prepare`` (or the search's driver) and published: its audio first, its manifest last, so a cache whose upload
was cut short has no manifest and is never used (it is prepared again). Each node fetches it into node-local scratch
(``DIST_SPK_SCRATCH``) once: the first worker downloads under a file lock while the node's other workers wait, and a
copy whose manifest differs from the stored one (the cache was prepared again) is replaced.

Ray-free: the driver and the workers both use it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from dist_spk.data.training_cache import AUDIO, MANIFEST, MARK, checked_files
from dist_spk.errors import DataError, DistSpkError
from dist_spk.runs import storage
from dist_spk.runs.locks import exclusive


def stored_cache_exists(location: str) -> bool:
    """Whether a complete cache (its manifest published) is at ``location``."""
    return storage.is_file(storage.join(location, MANIFEST))


def publish(local: Path, location: str) -> None:
    """Upload the cache prepared at ``local`` to ``location``: the audio, then the manifest that completes it (the
    local folder's mark stays local: the store holds exactly the audio and the manifest)."""
    storage.upload(local, location, skip=(MANIFEST, MARK))
    storage.write_bytes(storage.join(location, MANIFEST), (Path(local) / MANIFEST).read_bytes())


def check_stored_cache(location: str, *, sources: list[Path] | None = None) -> None:
    """Refuse a stored cache that is incomplete, damaged or stale for ``sources`` (reads its manifest and the
    audio's size from the store; downloads nothing else)."""
    try:
        manifest = json.loads(storage.read_text(storage.join(location, MANIFEST)))
    except (DistSpkError, OSError, ValueError) as err:
        raise DataError(f"{location}: not a training cache ({MANIFEST}: {err}); build it with "
                        f"'dist-spk data prepare ROOT --out {location}'") from None
    checked_files(location, manifest, storage.size(storage.join(location, AUDIO)), sources)


def fetch_cache(location: str) -> Path:
    """A local copy of the stored cache at ``location`` on this node (downloaded when this node has none, or an
    older one)."""
    manifest = storage.read_bytes(storage.join(location, MANIFEST))
    local = storage.scratch_dir(location, kind="caches")
    with exclusive(local.with_name(f".{local.name}.lock")):
        if _holds(local, manifest):
            return local
        shutil.rmtree(local, ignore_errors=True)
        storage.download(location, local, skip=(MANIFEST,))
        (local / MANIFEST).write_bytes(manifest)  # last: a copy without it is incomplete
    return local


def local_cache(location: str) -> Path:
    """Where this process reads the cache ``location`` names: the folder itself, or this node's copy of a stored
    cache."""
    return fetch_cache(location) if storage.is_remote(location) else Path(location)


def _holds(local: Path, manifest: bytes) -> bool:
    if not (local / MANIFEST).is_file() or (local / MANIFEST).read_bytes() != manifest:
        return False
    return (local / AUDIO).is_file() and (local / AUDIO).stat().st_size == json.loads(manifest)["samples"] * 2


