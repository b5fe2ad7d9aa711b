"""Where work lives: a local folder or any filesystem fsspec knows (``s3://``, ``gs://``, ...), chosen
by the path alone.

A local path stays a plain :class:`pathlib.Path`, so nothing changes for a single machine. A URL becomes
a :class:`upath.UPath`, which answers the same calls (``/``, ``exists``, ``read_text``, ``open``,
``iterdir``, ``glob``) through fsspec. What pathlib cannot do remotely is here, once: atomic writes,
removing a tree, moving a file, a file's stamp, and handing a path to pyarrow.

Credentials and endpoints come from the environment that fsspec's backend reads itself (for S3:
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, or an instance role); they are
never part of a path, so no message or file of ours can show them. On a cluster every node needs them
in its own environment: workers open the work directory themselves.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, TypeAlias

from pydantic import BeforeValidator, PlainSerializer
from upath import UPath

if TYPE_CHECKING:
    from typing_extensions import TypeIs

AnyPath: TypeAlias = Path | UPath

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(text: str | os.PathLike[str]) -> bool:
    return bool(_URL.match(str(text))) and not str(text).startswith("file://")


def credentials_end(text: str) -> int | None:
    """Where the ``user:password@`` of a URL ends (the index after its ``@``), or None when it has none.

    A secret may hold ``/`` (AWS secret keys often do), so the authority is not simply the text up to the
    first ``/``: a ``:`` there that is not a port (a bucket or host name never holds one) followed by an
    ``@`` anywhere later is a credential too. The last ``@`` is taken, so that no part of a secret that
    itself holds ``@`` or ``/`` is left outside the mask (a message may mask more than the secret)."""
    match = _URL.match(text)
    if match is None:
        return None
    rest = text[match.end():]
    authority = rest.split("/", 1)[0]
    if "@" in authority or (":" in authority and "@" in rest and not authority.partition(":")[2].isdigit()):
        return match.end() + rest.rindex("@") + 1
    return None


def redacted(text: str) -> str:
    """``text`` with any ``user:password@`` of a URL replaced, for messages."""
    end = credentials_end(text)
    if end is None:
        return text
    match = _URL.match(text)
    assert match is not None  # credentials_end found a URL
    return text[:match.end()] + "***@" + text[end:]


def location(text: str | os.PathLike[str]) -> AnyPath:
    """A path from a command line, a config or a Ray item: a URL on another filesystem, else local."""
    if isinstance(text, UPath) and is_remote(text):
        return text
    raw = str(text)
    if is_url(raw):
        if credentials_end(raw) is not None:
            raise ValueError("credentials do not belong in a path: set them in the environment"
                             " (e.g. AWS_ACCESS_KEY_ID) on every node")
        return UPath(raw)
    return Path(raw.removeprefix("file://"))


def _location_of(value: Any) -> AnyPath:
    if not isinstance(value, str | os.PathLike):
        raise ValueError(f"not a path: {value!r}")
    return location(value)


# A pydantic field holding a path on any filesystem (pydantic's Path would turn ``s3://b/k`` into ``s3:/b/k``).
StoragePath = Annotated[Any, BeforeValidator(_location_of), PlainSerializer(str, return_type=str)]


def local_videos(path: AnyPath, what: str) -> Path:
    """A videos folder as a local path: decoding reads files by path, so videos on object storage must
    be mounted (NFS, a FUSE-mounted bucket) on every node rather than named by URL."""
    if is_remote(path):
        from streamo_data.core.errors import UserError

        raise UserError(f"{what} {path}: videos are decoded from a folder every node mounts, not from object"
                        " storage; mount it (e.g. a FUSE-mounted bucket) and give its local path")
    return Path(path)


def is_remote(path: AnyPath) -> TypeIs[UPath]:
    """Whether ``path`` is on another filesystem (to a type checker: a UPath when true, a Path when not)."""
    return isinstance(path, UPath) and not isinstance(path, Path)


def resolved(path: AnyPath) -> AnyPath:
    """An absolute local path (what a record of where things came from should hold); a URL as it is."""
    return path if is_remote(path) else Path(path).resolve()


def arrow_source(path: AnyPath) -> tuple[str, Any]:
    """``(path, filesystem)`` for pyarrow: its own local filesystem, or the fsspec one of a URL."""
    if is_remote(path):
        return path.path, path.fs
    return str(path), None


@contextmanager
def uploaded_on_success(target: AnyPath) -> Iterator[Path]:
    """A local temporary file that is uploaded as ``target`` when the block ends without an error: one
    upload, and an object store shows an object only once its upload is complete, so a reader or a
    crash never sees half a file (:func:`streamo_data.store.io.atomic_path` is the local twin)."""
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    try:
        yield Path(temporary)
        put(Path(temporary), target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


_SNAPSHOTS: dict[str, Any] = {}
SNAPSHOT_PREFIX = "streamo-snapshot-"


def _sweep_snapshots() -> None:
    """Snapshot folders of processes that are gone: a Ray worker is often killed at the end of a job,
    before its atexit runs, so the next process on the node removes what it left."""
    for folder in Path(tempfile.gettempdir()).glob(SNAPSHOT_PREFIX + "*"):
        try:
            pid = int(folder.name.removeprefix(SNAPSHOT_PREFIX).split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, PermissionError, OSError):
            continue


def _drop_snapshots() -> None:
    for cache in _SNAPSHOTS.values():
        shutil.rmtree(cache.storage[-1], ignore_errors=True)


def open_snapshot(path: AnyPath, version: str) -> BinaryIO:
    """``path`` opened for reading, for a file that stays the same while ``version`` does (a build's
    source tables, under its plan's stamp): on an object store the first open downloads it whole into
    this process's cache (fsspec's ``simplecache``) and later opens are local, with no request at all.
    A batch reads a few row groups of every source file; without the copy each such read is several
    requests, once per batch and stage."""
    if not is_remote(path):
        return Path(path).open("rb")
    import atexit

    from fsspec.implementations.cached import SimpleCacheFileSystem

    key = f"{id(path.fs)}:{version}"  # one per filesystem client and version
    if key not in _SNAPSHOTS:
        if not _SNAPSHOTS:
            atexit.register(_drop_snapshots)
            _sweep_snapshots()
        folder = tempfile.mkdtemp(prefix=f"{SNAPSHOT_PREFIX}{os.getpid()}-")
        _SNAPSHOTS[key] = SimpleCacheFileSystem(fs=path.fs, cache_storage=folder)
    return _SNAPSHOTS[key].open(path.path, "rb")


def put(local: Path, target: AnyPath) -> None:
    """Move a finished local file to ``target``: a rename on the same disk, an upload to an object store."""
    if not is_remote(target):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        os.replace(local, target)
        return
    target.fs.put_file(str(local), target.path)
    local.unlink()


def relative_name(path: AnyPath, root: AnyPath) -> str:
    """``path`` below ``root`` as a POSIX string, on any filesystem."""
    if not is_remote(path):
        assert not is_remote(root), root  # a local path lies under a local root
        return Path(path).relative_to(root).as_posix()
    assert is_remote(root), root  # a remote path lies under a remote root
    return path.path.removeprefix(root.path.rstrip("/") + "/")


def remove_tree(path: AnyPath) -> None:
    """Remove a folder and everything under it; nothing when it is not there."""
    if not is_remote(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    if path.exists():
        path.fs.rm(path.path, recursive=True)


def move(source: AnyPath, target: AnyPath) -> None:
    """``os.replace`` locally; a copy and a delete on an object store (which has no rename)."""
    if not is_remote(source):
        put(Path(source), target)
        return
    assert is_remote(target), target  # moved within one filesystem (a local one takes the branch above)
    source.fs.mv(source.path, target.path)


_BUCKETS: set[tuple[int, str]] = set()


def make_dirs(path: AnyPath) -> None:
    """A folder and its parents. An object store has no folders (a prefix exists once it holds an
    object), so there its bucket is only checked: a missing bucket is an error, never created."""
    if not is_remote(path):
        Path(path).mkdir(parents=True, exist_ok=True)
        return
    bucket = path.path.split("/", 1)[0]
    known = (id(path.fs), bucket)
    if known in _BUCKETS:  # every upload makes sure of its bucket: ask the store once per process
        return
    if not path.fs.exists(bucket):
        from streamo_data.core.errors import UserError

        # never made here: a typo in --out would otherwise create a bucket in the account and fill it
        raise UserError(f"{redacted(str(path))}: the bucket {bucket!r} does not exist (or these credentials"
                        " cannot see it); create it first, e.g. `aws s3 mb s3://" + bucket + "`")
    _BUCKETS.add(known)


def file_stamp(path: AnyPath) -> list[Any]:
    """What a cached result of reading ``path`` depends on: size and modification time locally; size and
    the object's ETag (its content hash for a single upload) on an object store."""
    if not is_remote(path):
        stat = Path(path).stat()
        return [str(path), stat.st_size, stat.st_mtime_ns]
    info = path.fs.info(path.path)
    return [str(path), info.get("size"), info.get("ETag") or info.get("etag") or info.get("md5Hash")
            or info.get("mtime")]


_STORAGE_MODULES = ("botocore", "aiobotocore", "s3fs", "gcsfs", "adlfs", "google", "fsspec")


def storage_failure(error: BaseException) -> str | None:
    """One line for an error raised by an object store's client (no credentials, endpoint unreachable,
    access denied, bucket missing), or None for any other error. Their messages name the operation and
    the bucket or endpoint, never a secret key."""
    for cause in (error, error.__cause__, error.__context__):
        module = type(cause).__module__ if cause is not None else ""
        if module.split(".")[0] in _STORAGE_MODULES:
            return f"object storage: {type(cause).__name__}: {cause}"
    return None
