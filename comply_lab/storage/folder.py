"""Folders inside a log directory, opened without ever following a symbolic link.

A log directory is where comply_lab writes, deletes and seals; anything inside it that is a
symbolic link points somewhere comply_lab must not touch. Every file operation below the log's
root therefore goes through a [`Folder`][comply_lab.storage.folder.Folder]: a directory
descriptor opened one path component at a time with ``O_NOFOLLOW``, and files opened, created,
replaced and removed relative to it, again with ``O_NOFOLLOW``. A link anywhere on the way makes
the operation fail with [`ForeignFileError`][comply_lab.errors.ForeignFileError], before a byte
is read or written through it; verification reports such links as ``foreign``.

The root itself is where the caller said the log is, link or not.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from comply_lab.errors import ForeignFileError

_REFUSED = (errno.ELOOP, errno.ENOTDIR, errno.EMLINK)


def refused(where: Path | str) -> ForeignFileError:
    """Return the error for a symbolic link (or other odd file) found at ``where``."""
    return ForeignFileError(
        f"{where} is a symbolic link or not a regular file or folder: comply_lab never "
        "follows a link out of a log, nor writes, copies or deletes through one; move it "
        "out of the log (verification reports it as foreign)"
    )


class Folder:
    """An open directory below a log's root (``relative`` ``""`` is the root itself).

    Args:
        root: The log's directory.
        relative: The folder's path below it, ``/``-separated.
        create: Create missing folders on the way.

    Raises:
        ForeignFileError: a component is a symbolic link, or not a directory.
        FileNotFoundError: the folder does not exist and ``create`` is False.
    """

    def __init__(self, root: Path, relative: str = "", *, create: bool = False) -> None:
        self.path = root / relative if relative else root
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in (p for p in relative.split("/") if p):
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                try:
                    child = os.open(
                        part,
                        os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                        dir_fd=fd,
                    )
                except OSError as err:
                    if err.errno in _REFUSED:
                        raise refused(self.path) from None
                    raise
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the directory descriptor."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def open(self, name: str, flags: int, mode: int = 0o644) -> int:
        """Open ``name`` in this folder without following a link; return the descriptor.

        Raises:
            ForeignFileError: ``name`` is a symbolic link.
        """
        try:
            return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=self.fd)
        except OSError as err:
            if err.errno in _REFUSED:
                raise refused(self.path / name) from None
            raise

    def read(self, name: str) -> bytes:
        """Return the bytes of the regular file ``name``.

        Raises:
            ForeignFileError: it is a symbolic link or not a regular file.
            FileNotFoundError: it does not exist.
        """
        fd = self.open(name, os.O_RDONLY)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise refused(self.path / name)
            chunks = []
            while chunk := os.read(fd, 1 << 24):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def is_file(self, name: str) -> bool:
        """Whether ``name`` is a regular file here (a link never is)."""
        try:
            return stat.S_ISREG(os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_mode)
        except FileNotFoundError:
            return False

    def create(self, name: str, body: bytes, mode: int = 0o644) -> bool:
        """Create ``name`` holding ``body`` atomically and durably, never overwriting.

        The bytes go to a temporary name, are fsynced and are linked into place (``link``
        fails if the target exists, unlike ``rename``), then the folder is fsynced.

        Returns:
            False if ``name`` already existed (it is left as it was).
        """
        temporary = temporary_name(name)
        fd = self.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            try:
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(temporary, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            except FileExistsError:
                return False
        finally:
            self.unlink(temporary, missing_ok=True)
        self.fsync()
        return True

    def write_with(self, name: str, write: Any, mode: int = 0o644) -> None:
        """Create ``name`` by ``write(file)`` on a temporary, then link it into place.

        Raises:
            FileExistsError: ``name`` exists: sealed files are never overwritten.
        """
        temporary = temporary_name(name)
        fd = self.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            with os.fdopen(fd, "wb") as file:
                write(file)
                file.flush()
                os.fsync(file.fileno())
            os.link(temporary, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        finally:
            self.unlink(temporary, missing_ok=True)
        self.fsync()

    def replace(self, source: Folder, name: str) -> None:
        """Move ``source``'s file ``name`` over this folder's ``name``, in one step."""
        if not source.is_file(name):
            raise refused(source.path / name)
        os.replace(name, name, src_dir_fd=source.fd, dst_dir_fd=self.fd)
        self.fsync()
        source.fsync()

    def unlink(self, name: str, *, missing_ok: bool = False) -> None:
        """Remove the regular file ``name`` (a link is refused, never removed)."""
        try:
            info = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            if missing_ok:
                return
            raise
        if not stat.S_ISREG(info.st_mode):
            raise refused(self.path / name)
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def names(self) -> list[str]:
        """Return the names in this folder."""
        return os.listdir(self.fd)

    def fsync(self) -> None:
        """Make the folder's entries durable."""
        os.fsync(self.fd)


def temporary_name(name: str) -> str:
    """Return a hidden temporary name for ``name`` that names this process.

    ``.<name>.<pid>.<random>.tmp``: readers skip hidden files, and
    [`sweep_temporaries`][comply_lab.storage.folder.sweep_temporaries] can tell one left by a
    killed process from one in use.
    """
    return f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def _split(name: str) -> tuple[str, str]:
    """Split a ``/``-separated name below the root into its folder and base name."""
    folder, _, base = name.rpartition("/")
    return folder, base


def read_file(root: Path, name: str) -> bytes:
    """Return the bytes of the regular file ``name`` below ``root``, following no link.

    Raises:
        ForeignFileError: a link (or odd file) is on the way.
        FileNotFoundError: it does not exist.
    """
    folder, base = _split(name)
    with Folder(root, folder) as opened:
        return opened.read(base)


def remove_file(root: Path, name: str) -> None:
    """Remove the regular file ``name`` below ``root`` if it is there; never a link.

    Raises:
        ForeignFileError: it, or a folder on the way, is a link.
    """
    folder, base = _split(name)
    try:
        with Folder(root, folder) as opened:
            opened.unlink(base, missing_ok=True)
    except FileNotFoundError:
        return


def file_size(root: Path, name: str) -> int | None:
    """Return the size of the regular file ``name`` below ``root``; None for anything else."""
    folder, base = _split(name)
    try:
        with Folder(root, folder) as opened:
            info = os.stat(base, dir_fd=opened.fd, follow_symlinks=False)
    except (FileNotFoundError, ForeignFileError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def scan(root: Path, relative: str = "") -> tuple[list[str], list[str]]:
    """Return the regular files and the folders in a folder below ``root``, sorted.

    Links and other odd files are left out, and a folder that is missing or reached
    through a link has nothing: a reader never follows one.
    """
    try:
        with Folder(root, relative) as opened, os.scandir(opened.fd) as found:
            items = [
                (e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False))
                for e in found
            ]
    except (FileNotFoundError, NotADirectoryError, ForeignFileError):
        return [], []
    files = sorted(name for name, _, regular in items if regular)
    folders = sorted(name for name, folder, _ in items if folder)
    return files, folders


def dataset_files(root: Path, visible: Callable[[str], bool]) -> list[str]:
    """Return the regular files below ``root`` that a dataset reader would read.

    Folders no reader enters (``_sealed``, ``_quarantine``, ``_staging``, hidden ones) are
    not walked; names are relative and sorted, kept when ``visible`` says so; symbolic
    links are left out (see `links`).
    """
    found = []
    for folder, subfolders, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        prefix = "" if rel == Path(".") else f"{rel.as_posix()}/"
        subfolders[:] = [
            name
            for name in subfolders
            if not name.startswith(("_", ".")) or name.startswith("date=")
        ]
        found += [prefix + name for name in files if visible(prefix + name)]
    return sorted(name for name in found if not os.path.islink(root / name))


def links(root: Path) -> list[str]:
    """Return every symbolic link below ``root`` (relative names, sorted); none is entered."""
    found = []
    for place, folders, files in os.walk(root):
        rel = Path(place).relative_to(root).as_posix()
        prefix = "" if rel == "." else f"{rel}/"
        for name in folders + files:
            if os.path.islink(os.path.join(place, name)):
                found.append(prefix + name)
    return sorted(found)


def sweep_temporaries(root: Path, relative: str = "") -> list[str]:
    """Delete the temporaries below a folder that processes no longer running left.

    Only regular files named by [`temporary_name`][comply_lab.storage.folder.temporary_name]
    whose process is gone are removed; links are neither entered nor removed.

    Returns:
        The names removed, relative to ``root``.

    Raises:
        ForeignFileError: the folder is reached through a link.
    """
    try:
        Folder(root, relative).close()  # refuses a link on the way before walking
    except FileNotFoundError:
        return []
    removed = []
    for place, _, files in os.walk(root / relative if relative else root):
        rel = Path(place).relative_to(root).as_posix()
        for name in files:
            parts = name.rsplit(".", 3)
            pid = int(parts[1]) if len(parts) == 4 and parts[1].isdigit() else None
            if not (name.startswith(".") and name.endswith(".tmp")) or pid is None:
                continue
            if _alive(pid):
                continue
            full = name if rel == "." else f"{rel}/{name}"
            with contextlib.suppress(ForeignFileError):
                remove_file(root, full)
                removed.append(full)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
