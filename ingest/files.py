"""What may be ingested: regular files found under the folders given, named by their logical path."""

from __future__ import annotations

import errno
import os
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from zhiku.core.errors import FileRejected


@dataclass
class Source:
    """A file to ingest: its logical path (its identity within a collection) and where it is on disk."""

    path: str
    location: Path
    refusal: str | None = None  # set when the file is refused before anything is read


def logical_path(raw: str) -> str:
    """A document's logical path: NFC, '/'-separated, no control characters, '.' or '..'; never truncated."""
    text = unicodedata.normalize("NFC", raw.replace("\\", "/"))
    parts = []
    for part in text.split("/"):
        part = "".join(ch for ch in part if unicodedata.category(ch)[0] != "C").strip()
        if part in ("", ".", ".."):
            continue
        parts.append(part)
    if not parts or not parts[-1].strip("."):
        raise FileRejected("invalid file name: give the file a name with letters or digits")
    return "/".join(parts)


def _kind(mode: int) -> str | None:
    """Why a non-regular file is refused, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def collect(paths: Iterable[str | Path]) -> list[Source]:
    """Files named directly, plus every file below named folders (hidden ones skipped), with refusals.

    Symlinks are followed only when their target stays inside the folder being ingested; FIFOs,
    devices and sockets are refused without being opened.
    """
    sources: list[Source] = []
    for raw in paths:
        given = Path(raw)
        try:
            st = given.stat()
        except OSError as e:
            sources.append(Source(logical_path(given.name or str(given)), given, f"cannot read file: {e.strerror}"))
            continue
        if not stat.S_ISDIR(st.st_mode):
            refusal = _kind(st.st_mode)
            sources.append(Source(logical_path(given.name), given,
                                  f"not ingested: {refusal}; only regular files can be indexed" if refusal else None))
            continue
        root = given.resolve()
        for folder, dirs, files in os.walk(given, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files) + sorted(d for d in dirs if (Path(folder) / d).is_symlink()):
                if name.startswith("."):
                    continue
                location = Path(folder) / name
                rel = location.relative_to(given).as_posix()
                sources.append(Source(logical_path(rel), location, _refusal(location, root)))
            dirs[:] = [d for d in dirs if not (Path(folder) / d).is_symlink()]
    return sources


def _refusal(location: Path, root: Path) -> str | None:
    """Why a file found inside a folder is refused, or None."""
    try:
        st = location.lstat()
    except OSError as e:
        return f"cannot read file: {e.strerror}"
    if stat.S_ISLNK(st.st_mode):
        target = location.resolve()
        if not target.is_relative_to(root):
            return (f"not ingested: a symbolic link to {target}, outside the folder being ingested; "
                    "copy the file into the folder to index it")
        try:
            st = target.stat()
        except OSError as e:
            return f"cannot read file: {e.strerror}"
    kind = _kind(st.st_mode)
    return f"not ingested: {kind}; only regular files can be indexed" if kind else None


def read_regular(location: Path, max_bytes: int) -> bytes:
    """A regular file's bytes, checked by fstat before reading: never blocks on a FIFO or reads a device."""
    try:
        fd = os.open(location, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise FileRejected(f"cannot read file: {e.strerror}") from e
    try:
        st = os.fstat(fd)
        kind = _kind(st.st_mode)
        if kind:
            raise FileRejected(f"not ingested: {kind}; only regular files can be indexed")
        if st.st_size > max_bytes:
            raise FileRejected(
                f"file too large ({st.st_size / 1e6:.1f} MB > {max_bytes / 1e6:.0f} MB): split it, "
                "or raise ZHIKU_MAX_FILE_MB")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        if e.errno == errno.EISDIR:
            raise FileRejected("not ingested: a folder") from e
        raise FileRejected(f"cannot read file: {e.strerror}") from e
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # it grew while being read
        raise FileRejected(f"file too large (> {max_bytes / 1e6:.0f} MB): split it, or raise ZHIKU_MAX_FILE_MB")
    return data
