"""Stored originals: each version of a document is kept under a generated id, for downloads and re-indexing."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

from zhiku.core.errors import DiskFull, FileRejected, ZhikuError

log = logging.getLogger(__name__)

# room kept free in the data dir beyond what a write needs: the index and the database grow too
RESERVE_BYTES = 64 * 1024 * 1024


def disk_full(data_dir: Path, error: OSError | None = None) -> DiskFull:
    """The error users see when the data dir's disk is full."""
    detail = f" ({error.strerror})" if error is not None and error.strerror else ""
    return DiskFull(f"the disk holding the data dir {data_dir} is full{detail}: free some space there "
                    "(or move ZHIKU_DATA_DIR to a larger disk) and try again; nothing was half-written")


class Originals:
    """Originals as files/<id[:2]>/<id>, each with a small manifest naming its collection and path."""

    def __init__(self, root: Path, data_dir: Path | None = None):
        self.root = Path(root)
        self.data_dir = Path(data_dir or self.root.parent)

    def path(self, blob: str) -> Path:
        """Where a stored original lives."""
        if not blob or not blob.isalnum():
            raise ZhikuError(f"invalid stored original id {blob!r}")
        return self.root / blob[:2] / blob

    def check_space(self, size: int) -> None:
        """Refuse a write of `size` bytes when it would fill the disk."""
        self.root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.root).free
        if free < size + RESERVE_BYTES:
            raise disk_full(self.data_dir)

    def put(self, blob: str, data: bytes, manifest: dict) -> str:
        """Store bytes under blob (written to a temporary name, then renamed); returns their sha256."""
        self.check_space(len(data))
        target = self.path(blob)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{blob}.part")
        try:
            # no fsync per file: the job checks the content hash when it reads the original back, so an
            # original cut short by a power loss fails with a reason instead of being indexed
            tmp.write_bytes(data)
            digest = hashlib.sha256(data).hexdigest()
            target.with_suffix(".json").write_text(
                json.dumps({**manifest, "content_hash": digest, "size": len(data)}, ensure_ascii=False))
            os.replace(tmp, target)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            target.with_suffix(".json").unlink(missing_ok=True)
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise disk_full(self.data_dir, e) from e
            raise ZhikuError(f"cannot store the original in {self.root}: {e.strerror}") from e
        return digest

    def read(self, blob: str, content_hash: str | None = None) -> bytes:
        """A stored original's bytes, checked against its content hash when one is given."""
        try:
            data = self.path(blob).read_bytes()
            if content_hash and hashlib.sha256(data).hexdigest() != content_hash:
                raise FileRejected("the stored original is damaged (its content changed on disk); upload the file again")
            return data
        except FileNotFoundError as e:
            raise FileRejected("the stored original is missing; upload the file again") from e
        except OSError as e:
            raise FileRejected(f"cannot read the stored original: {e.strerror}") from e

    def remove(self, blob: str | None) -> None:
        """Delete a stored original and its manifest (idempotent)."""
        if not blob:
            return
        target = self.path(blob)
        target.unlink(missing_ok=True)
        target.with_suffix(".json").unlink(missing_ok=True)

    def manifests(self) -> list[tuple[str, dict]]:
        """(blob, manifest) of every stored original, for rebuilding a lost catalogue."""
        found = []
        for meta in sorted(self.root.glob("??/*.json")):
            blob = meta.stem
            if self.path(blob).exists():
                try:
                    found.append((blob, json.loads(meta.read_text())))
                except (OSError, ValueError):
                    log.warning("unreadable manifest %s", meta)
        return found

    def blobs(self) -> set[str]:
        """Every stored original's id."""
        return {p.name for p in self.root.glob("??/*") if p.suffix == "" and not p.name.startswith(".")}
