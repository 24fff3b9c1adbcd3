"""pyannote's task metadata cache, prepared once and shared by every worker and trial.

pyannote's ``Task.prepare_data`` scans the whole protocol (audio durations, annotations, validation
chunks) and saves the result; ``setup`` on each worker loads it. We run ``prepare_data`` once in the
driver, before any worker starts, writing to a temporary file renamed into place, so concurrent
trials never read a half-written cache. The file name carries a fingerprint of what the scan
depends on (protocol, dataset files, chunk duration): change any of them and a new cache is built.
On a cluster the cache folder must be on storage every node sees.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from dist_spk.config.tasks import SegDataConfig
from dist_spk.data.layout import SeedLayout, is_seed_layout


def dataset_fingerprint(config: SegDataConfig) -> str:
    """A hash of the dataset's listing files and the settings the metadata scan depends on."""
    root = Path(config.root).expanduser().resolve()
    items: list = [str(root), config.protocol, config.duration, config.max_speakers_per_chunk]
    if is_seed_layout(root):
        layout = SeedLayout(root)
        for split in layout.splits():
            paths = [layout.list_path(split)]
            for file in layout.files(split):
                paths += [p for p in (file.audio, file.rttm, file.uem) if p is not None and p.exists()]
            items += [(str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    elif root.is_file():  # a database.yml: its text (the files it names are read by pyannote.database)
        items.append(hashlib.sha256(root.read_bytes()).hexdigest())
    return hashlib.sha256(json.dumps(items, default=str).encode()).hexdigest()[:16]


def cache_path(config: SegDataConfig, cache_dir: Path, protocol_name: str) -> Path:
    return Path(cache_dir) / f"{protocol_name}-{dataset_fingerprint(config)}.npz"


def prepare_cache(task, path: Path) -> Path:
    """Run ``task.prepare_data()`` into ``path`` unless a complete cache is already there."""
    path = Path(path)
    if path.is_file() and path.stat().st_size > 0:
        task.cache = path
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    task.cache = partial
    task.prepare_data()
    os.replace(partial, path)  # atomic: readers see no cache or a whole one
    task.cache = path
    return path
