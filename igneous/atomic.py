"""Atomic file:// writes: a file appears under its final name whole, or not at all.

cloud-files writes a local file by opening its final name and writing into it, so a full
disk, a SIGKILL or a node that dies mid-write leaves a 0-byte or truncated file that later
reads as corrupt (or, worse, as a valid-looking short chunk). Every file:// write of ours
goes through :func:`atomic_write` instead: the bytes go to ``{final}.partial`` in the same
directory and are renamed over ``final`` when complete (``rename(2)`` is atomic within a
filesystem).

The temporary name is a function of the destination only, so leftovers never pile up: a
writer killed mid-write leaves ``{final}.partial``, and the next write of the same file (the
rerun of the task) takes it over, truncates it and renames it into place. Concurrent
writers of one destination are told apart by an exclusive ``flock`` on the temporary file:
the holder writes there, anyone else (a second worker whose lease overlapped) writes to a
private ``{final}.{host}-{pid}-{n}.partial`` instead (if that writer dies, its file stays until
:func:`remove_stale_partials` runs for the destination: the shard writer calls it, chunk
writes do not, since it lists the directory). Renames of ``{final}.partial`` only
happen under its lock, and a writer checks after locking that the path still names the
inode it locked, so it never truncates a file another writer has already renamed into
place. A temporary file of another destination is never touched.

:func:`install` replaces ``cloudfiles.interfaces.FileInterface.put_file`` with the atomic
version once per process (``import igneous`` does it), so CloudVolume chunk uploads, info
and provenance writes, mesh and skeleton files and every ``CloudFiles.put`` of ours reach
the disk this way, in workers too; local-to-local ``CloudFiles.transfer_to`` copies (mesh
file transfers) get an atomic ``copyfile``. Remote stores (gs, s3, http) are atomic per
object already and are not touched. Not covered: cloud-files' remote-to-local downloads
(``save_file``), which igneous only uses into scratch directories.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import logging
import os
import re
import shutil
import socket
from typing import Callable, Optional

__all__ = [
    "PARTIAL_SUFFIX",
    "atomic_write",
    "write_bytes",
    "copy_file",
    "remove_stale_partials",
    "install",
    "installed",
    "is_partial",
]

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"
_counter = itertools.count()
_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname() or "host")[:32]
COPY_BLOCK = 2**20  # bytes per read when a file object is copied


def is_partial(name: str) -> bool:
    """True for the temporary names :func:`atomic_write` uses (listings may skip them)."""
    return name.endswith(PARTIAL_SUFFIX)


def _open_shared_partial(final: str) -> Optional[int]:
    """Open and lock ``{final}.partial`` for writing; None when another live writer holds it
    (or the filesystem has no locks: then a private name is safer)."""
    path = final + PARTIAL_SUFFIX
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # like open(): the umask decides
            created = True
        except FileExistsError:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
            created = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) and created:
                os.unlink(path)  # no locking here (ENOLCK, ENOTSUP): leave no empty file behind
            return None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # ours: a leftover of a dead writer, or new. Start it over.
            if not created:
                os.ftruncate(fd, 0)
            return fd
        os.close(fd)  # renamed into place by the writer that held it just before us: retry
    return None


def atomic_write(final: str, write: Callable[[int], None]) -> None:
    """Create ``final`` atomically: ``write(fd)`` fills a temporary file (raw fd, positioned at
    0), which is then renamed over ``final``. On any error ``final`` is untouched and the
    temporary file is removed."""
    directory = os.path.dirname(final)
    if directory:
        os.makedirs(directory, exist_ok=True)
    fd = _open_shared_partial(final)
    if fd is None:
        tmp = f"{final}.{_HOST}-{os.getpid()}-{next(_counter)}{PARTIAL_SUFFIX}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # like open(): the umask decides
    else:
        tmp = final + PARTIAL_SUFFIX
    try:
        write(fd)
        os.replace(tmp, final)  # while the lock is held: see the module docstring
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(final: str) -> int:
    """Remove private temporary files of ``final`` left by dead writers of this host
    (``{final}.{host}-{pid}-{n}.partial``, and ``{final}.{pid}.partial`` from earlier
    versions); returns how many. It lists the directory, so call it where writes are few
    and large (shards), not per chunk. A live writer's file is never touched."""
    import glob

    removed = 0
    prefix = final + "."
    for path in glob.glob(glob.escape(final) + ".*" + PARTIAL_SUFFIX):
        middle = path[len(prefix) : -len(PARTIAL_SUFFIX)]
        legacy = re.fullmatch(r"(\d+)", middle)
        private = re.fullmatch(r"(.+)-(\d+)-(\d+)", middle)
        if legacy:
            pid = int(legacy.group(1))
        elif private and private.group(1) == _HOST:
            pid = int(private.group(2))
        else:
            continue  # another host's writer, or not ours
        if pid == os.getpid() or _alive(pid):
            continue
        try:
            os.unlink(path)
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def write_bytes(final: str, content) -> None:
    """Atomically write ``content`` (bytes-like, or a readable file object) to ``final``."""

    def fill(fd: int) -> None:
        if hasattr(content, "read"):
            while True:
                block = content.read(COPY_BLOCK)
                if not block:
                    return
                _write_all(fd, block)
        else:
            _write_all(fd, content)

    atomic_write(final, fill)


def _write_all(fd: int, data) -> None:
    view = memoryview(data).cast("B")
    while len(view):
        view = view[os.write(fd, view) :]


_installed = False


def installed() -> bool:
    return _installed


def install() -> None:
    """Make cloud-files' local writes atomic in this process (idempotent)."""
    global _installed
    if _installed:
        return
    from cloudfiles import interfaces

    original = interfaces.FileInterface.put_file

    def put_file(self, file_path, content, content_type, compress, cache_control=None, storage_class=None):
        # the same naming rules as cloud-files' own put_file (compression extension, text encoding)
        path = self.get_path_to_file(file_path)
        lock_path = path
        compress_ext = self.get_extension(compress)
        if os.path.splitext(path)[1] != compress_ext:
            path += compress_ext
        if content and isinstance(content, str) and content_type and re.search("json|te?xt", content_type):
            content = content.encode("utf-8")
        if isinstance(content, str):
            content = content.encode("utf-8")
        return self.io_with_lock(lambda: write_bytes(path, content), lock_path, exclusive=True)

    put_file.__doc__ = f"Atomic replacement of {original.__qualname__} installed by igneous.atomic."
    put_file.__wrapped__ = original
    interfaces.FileInterface.put_file = put_file

    # CloudFiles.transfer_to/transfer_from between two local paths copy with
    # shutil.copyfile(src, dest) straight onto the final name: give that module a shutil
    # whose copyfile is atomic (everything else is the real shutil).
    from cloudfiles import cloudfiles as cf_module

    cf_module.shutil = _AtomicShutil()
    _installed = True


def copy_file(src: str, dst: str, follow_symlinks: bool = True) -> str:
    """``shutil.copyfile`` that creates ``dst`` atomically (kernel-side copy, no user-space buffer)."""

    def fill(fd: int) -> None:
        with open(src, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            done = 0
            while done < size:
                sent = os.sendfile(fd, f.fileno(), done, size - done)
                if sent == 0:
                    raise OSError(f"{src} shrank while it was copied")
                done += sent

    atomic_write(dst, fill)
    return dst


class _AtomicShutil:
    """The ``shutil`` module with an atomic ``copyfile`` (installed into cloud-files only)."""

    copyfile = staticmethod(copy_file)

    def __getattr__(self, name):
        return getattr(shutil, name)
