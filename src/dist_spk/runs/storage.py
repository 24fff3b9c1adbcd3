"""Where experiments and runs live: a local path, or any pyarrow file system URI (``s3://``, ``gs://``, ...).

An experiment on an object store is worked on through a local mirror (:func:`local_mirror`) on the machine that
drives it: the small files (configs, metrics, summaries, plots) are written there and uploaded (:func:`upload`); Ray
Tune and Ray Train write their state and checkpoints to the store themselves. Each worker keeps its run directory in
node-local scratch and publishes its small files after every epoch (:mod:`dist_spk.train.session`).

pyarrow finds the store's credentials the usual way (environment, config files, instance roles) and reads
``AWS_ENDPOINT_URL`` for S3-compatible stores (MinIO, Ceph); a URI may also carry pyarrow's query options
(``s3://bucket/exp?endpoint_override=host:9000&scheme=http``). Nothing here writes a credential: file systems are
rebuilt from the URI in every process, never pickled with keys.

Ray-free: every layer may import this module.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tempfile
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from dist_spk.errors import DistSpkError

# what stays on the store when an experiment is mirrored: Tune's state and Train's checkpoints (Ray reads them
# there), and the checkpoint files themselves (fetched one at a time, when a command needs one)
HEAVY = ("tune", "train", "checkpoints")


def is_remote(location: str | Path) -> bool:
    """Whether ``location`` is a URI of a file system other than the local one (``file://`` is local)."""
    scheme = urlsplit(str(location)).scheme
    return len(scheme) > 1 and scheme != "file"  # a one-letter scheme is a Windows drive


def local_path(location: str | Path) -> Path:
    return Path(urlsplit(str(location)).path if str(location).startswith("file://") else location).resolve()


def normalize(location: str | Path) -> str:
    """A location as it is stored in payloads and records: an absolute local path, or the URI unchanged (refused
    when it carries a credential)."""
    if is_remote(location):
        check_no_credentials(location)
        return str(location).rstrip("/")
    return str(local_path(location))


_CREDENTIAL_OPTIONS = ("key", "secret", "token", "password", "session")


def check_no_credentials(location: str | Path) -> None:
    """Refuse a URI that holds a credential (``s3://KEY:SECRET@bucket/...``, ``?secret_key=...``): a location is
    printed, stored in records and payloads and handed to every worker. The error never repeats the secret."""
    split = urlsplit(str(location))
    options = [name for name, _ in parse_qsl(split.query) if any(word in name.lower() for word in _CREDENTIAL_OPTIONS)]
    if split.username or split.password or options:
        shown = urlunsplit((split.scheme, split.hostname or "", split.path, "", ""))
        what = f"the option(s) {', '.join(options)}" if options else "a user name or password before the bucket"
        raise DistSpkError(f"{shown}: this URI carries {what}: credentials in a URI would be printed and stored with "
                           "the experiment. Give the bucket alone; the store's credentials come from the cluster "
                           "(instance role, ~/.aws, or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in its "
                           "environment)")


def join(location: str | Path, *parts: str) -> str:
    """``location/part/...``; a URI keeps its query options."""
    if not is_remote(location):
        return os.path.normpath(Path(local_path(location), *parts))
    split = urlsplit(str(location))
    path = posixpath.normpath(posixpath.join(split.path or "/", *parts))
    return urlunsplit((split.scheme, split.netloc, path, split.query, ""))


def filesystem(location: str | Path):
    """(pyarrow file system, path inside it) for ``location``; one clear error when pyarrow cannot open it."""
    import pyarrow.fs

    if not is_remote(location):
        return pyarrow.fs.LocalFileSystem(), str(local_path(location))
    check_no_credentials(location)
    try:
        return pyarrow.fs.FileSystem.from_uri(str(location))
    except (OSError, ValueError, pyarrow.ArrowException) as err:
        raise DistSpkError(f"{location}: cannot open this storage location ({err})") from None


def ray_storage(location: str | Path):
    """(``storage_path``, ``storage_filesystem``) for Ray's RunConfig: the file system built here, so a URI's query
    options reach Ray too (None, and an absolute path, for a local location)."""
    fs, path = filesystem(location)
    return (path, fs) if is_remote(location) else (path, None)


def exists(location: str | Path) -> bool:
    import pyarrow.fs

    fs, path = filesystem(location)
    return fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound


def is_file(location: str | Path) -> bool:
    import pyarrow.fs

    fs, path = filesystem(location)
    return fs.get_file_info(path).type == pyarrow.fs.FileType.File


def size(location: str | Path) -> int:
    """A file's size in bytes; -1 when there is no such file."""
    import pyarrow.fs

    fs, path = filesystem(location)
    info = fs.get_file_info(path)
    return info.size if info.type == pyarrow.fs.FileType.File else -1


def read_bytes(location: str | Path) -> bytes:
    fs, path = filesystem(location)
    try:
        with fs.open_input_stream(path) as handle:
            return handle.readall()
    except FileNotFoundError:
        raise DistSpkError(f"{location}: no such file") from None


def read_text(location: str | Path) -> str:
    return read_bytes(location).decode()


def write_bytes(location: str | Path, data: bytes) -> None:
    """Write a whole file: on a local disk through a temporary file and a rename, so a reader never sees half of it
    (an object store's PUT is atomic already)."""
    if not is_remote(location):
        path = local_path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(data)
        partial.replace(path)
        return
    fs, path = filesystem(location)
    with fs.open_output_stream(path) as handle:
        handle.write(data)


def write_text(location: str | Path, text: str) -> None:
    write_bytes(location, text.encode())


def list_names(location: str | Path) -> list[str]:
    """The names of what ``location`` holds directly (an empty list when it does not exist)."""
    import pyarrow.fs

    fs, path = filesystem(location)
    infos = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    return sorted(PurePosixPath(info.path).name for info in infos)


def relocate(value: str, mirror: Path, location: str | Path) -> str:
    """A path inside the local ``mirror`` of ``location``, as the same place on ``location`` (other values kept)."""
    try:
        relative = Path(value).resolve().relative_to(Path(mirror).resolve())
    except ValueError:
        return value
    return join(location, *relative.parts)


def delete(location: str | Path) -> None:
    fs, path = filesystem(location)
    fs.delete_file(path)


def _files(fs, root: str, skip: tuple[str, ...]) -> list[str]:
    """Every file under ``root`` (paths relative to it), leaving out any path with a part named in ``skip``."""
    import pyarrow.fs

    infos = fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True, allow_not_found=True))
    relative = [PurePosixPath(info.path).relative_to(root) for info in infos if info.type == pyarrow.fs.FileType.File]
    return [str(path) for path in relative if not set(path.parts) & set(skip)]


def _copy(source_fs, source: str, target_fs, target: str, skip: tuple[str, ...]) -> int:
    import pyarrow.fs

    names = _files(source_fs, source, skip)
    for name in names:
        target_fs.create_dir(str(PurePosixPath(target, name).parent), recursive=True)
        # one file at a time (pyarrow.fs.copy_files has no filter); the small files of runs and reports
        pyarrow.fs.copy_files(f"{source}/{name}", f"{target}/{name}", source_filesystem=source_fs,
                              destination_filesystem=target_fs)
    return len(names)


def upload(local: Path, location: str | Path, *, skip: tuple[str, ...] = ()) -> int:
    """Copy the files under ``local`` to ``location`` (same relative paths); return how many."""
    import pyarrow.fs

    fs, path = filesystem(location)
    # W&B's latest-run is a link to the newest run folder, which is uploaded anyway
    return _copy(pyarrow.fs.LocalFileSystem(), str(Path(local).resolve()), fs, path, (*skip, "latest-run"))


def download(location: str | Path, local: Path, *, skip: tuple[str, ...] = ()) -> int:
    """Copy the files under ``location`` into ``local``; return how many (none when nothing is there)."""
    import pyarrow.fs

    fs, path = filesystem(location)
    Path(local).mkdir(parents=True, exist_ok=True)
    return _copy(fs, path, pyarrow.fs.LocalFileSystem(), str(Path(local).resolve()), skip)


def scratch_dir(location: str | Path, *, kind: str) -> Path:
    """A node-local folder for ``location`` (a mirror of an experiment, a worker's run directory): under
    ``DIST_SPK_SCRATCH`` or the temp dir, named after the location so a restarted process finds it again."""
    root = Path(os.environ.get("DIST_SPK_SCRATCH") or Path(tempfile.gettempdir()) / "dist_spk")
    digest = hashlib.sha1(normalize(location).encode()).hexdigest()[:12]
    name = PurePosixPath(urlsplit(str(location)).path).name or "root"
    folder = root / kind / digest / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def local_mirror(location: str | Path) -> Path:
    """The local folder a command writes ``location``'s small files in: the location itself when it is local."""
    return local_path(location) if not is_remote(location) else scratch_dir(location, kind="experiments")


def check_writable(location: str | Path) -> None:
    """Write and delete a probe at ``location``: missing credentials, an unknown bucket or an unreachable endpoint
    is one error here, before any Ray resource is taken."""
    probe = join(location, f".dist_spk-probe-{os.getpid()}")
    try:
        write_bytes(probe, b"dist_spk")
        delete(probe)
    except DistSpkError:
        raise
    except OSError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DistSpkError(f"{location}: cannot write here ({first})") from None
