"""Index generations: which Qdrant collection or embedded shard serves searches, and building new ones."""

from __future__ import annotations

import fcntl
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Callable

from zhiku.core.errors import IndexUnavailable
from zhiku.retrieval.index import Index
from zhiku.store import Generation, Store

log = logging.getLogger(__name__)

# how long a process trusts its idea of the active generation before asking the store again
RECHECK_SECONDS = 1.0
# a retired generation is kept this long after a switch, so processes still reading it move over first
RETIRED_GRACE_SECONDS = 10.0


class Generations:
    """Opens the active generation's index, follows switches made by any process, builds and drops others.

    Args:
        store: the app store holding the generation pointer.
        open_index: opens the index of a generation by name (an embedded shard or a server collection).
        drop_index: removes a generation's storage once nothing serves from it.
        prefix: name prefix of generations (ZHIKU_INDEX).
        embed_model, dim: the configured embedding model, which the active generation must match.
        on_switch: called with the new generation's name after this process switches to it (alias swap).
    """

    def __init__(self, store: Store, open_index: Callable[[str], Index], drop_index: Callable[[str], None],
                 prefix: str, embed_model: str, dim: int, on_switch: Callable[[str], None] | None = None):
        self.store = store
        self._open_index = open_index
        self._drop_index = drop_index
        self.prefix = prefix
        self.embed_model = embed_model
        self.dim = dim
        self._on_switch = on_switch
        self._lock = threading.RLock()
        self._current: tuple[Generation, Index] | None = None
        self._checked = 0.0

    def active(self) -> Index:
        """The index searches and writes use now (created on first use)."""
        with self._lock:
            now = time.monotonic()
            if self._current is not None and now - self._checked < RECHECK_SECONDS:
                return self._current[1]
            gen = self.store.active_generation()
            if gen is None:
                gen = self._create_first()
            self._checked = now
            if self._current is None or self._current[0].id != gen.id:
                old = self._current
                index = self._open_index(gen.name)
                self._current = (gen, index)
                if old is not None:
                    old[1].close()
            current_gen = self._current[0]
        if current_gen.embed_model != self.embed_model or current_gen.dim != self.dim:
            raise IndexUnavailable(
                f"the index was built with the embedding model {current_gen.embed_model} ({current_gen.dim} "
                f"dimensions), but ZHIKU_EMBED_MODEL is {self.embed_model} ({self.dim}): run `zhiku reindex` "
                "to rebuild it with the new model (the old index keeps serving meanwhile)")
        return self._current[1]

    def active_generation(self) -> Generation:
        """The active generation's record."""
        self.active_or_none()
        return self._current[0]

    def active_or_none(self) -> Index | None:
        """The active index, or None when it does not match the embedding model."""
        try:
            return self.active()
        except IndexUnavailable:
            return None

    def _create_first(self) -> Generation:
        gen = self.store.new_generation(self.prefix, self.embed_model, self.dim, active=True)
        index = self._open_index(gen.name)
        try:
            index.ensure(self.dim, self.embed_model)
        finally:
            index.close()
        if self._on_switch is not None:
            self._on_switch(gen.name)
        return gen

    def build(self) -> tuple[Generation, Index]:
        """A new, empty generation for the configured model, not yet serving."""
        gen = self.store.new_generation(self.prefix, self.embed_model, self.dim)
        index = self._open_index(gen.name)
        index.ensure(self.dim, self.embed_model)
        return gen, index

    def switch(self, gen: Generation, index: Index, counts: dict, failed: dict) -> None:
        """Make a finished generation the one that serves, then remove the old one."""
        old = self.store.active_generation()
        self.store.activate_generation(gen.id, counts, failed)
        if self._on_switch is not None:
            self._on_switch(gen.name)
        with self._lock:
            previous, self._current = self._current, (self.store.active_generation(), index)
            self._checked = time.monotonic()
        if previous is not None and previous[1] is not index:
            previous[1].close()
        if old is not None:
            self.store.set_generation_state(old.id, "retired")

    def abandon(self, gen: Generation, index: Index | None) -> None:
        """Give up a generation being built: the active one keeps serving."""
        if index is not None:
            index.close()
        self.store.set_generation_state(gen.id, "failed")
        self.collect_garbage()

    def collect_garbage(self, building_too: bool = False) -> None:
        """Remove the storage of failed generations, of retired ones other processes have had time to leave,
        and of abandoned builds when asked."""
        gens = self.store.generations()
        active = next((g for g in gens if g.state == "active"), None)
        settled = active is None or time.time() - (active.activated_at or 0) > RETIRED_GRACE_SECONDS
        for gen in gens:
            if gen.state == "failed" or (gen.state == "retired" and settled) or (building_too and gen.state == "building"):
                try:
                    self._drop_index(gen.name)
                    self.store.drop_generation(gen.id)
                except Exception as e:  # noqa: BLE001 - retried at the next start
                    log.warning("could not remove index generation %s yet: %s", gen.name, e)

    def close(self) -> None:
        """Close the open index."""
        with self._lock:
            if self._current is not None:
                self._current[1].close()
                self._current = None


def drop_edge_shard(index_dir: Path, name: str, wait_seconds: float = 30.0) -> None:
    """Delete an embedded generation once no process holds it (they release it when asked by the mark)."""
    path = index_dir / name
    lock_path = index_dir / f"{name}.lock"
    waiting = index_dir / f"{name}.waiting"
    if not path.exists() and not lock_path.exists():
        return
    with open(lock_path, "a+") as lock:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waiting.touch()
                if time.monotonic() > deadline:
                    raise IndexUnavailable(f"index generation {name} is still in use") from None
                time.sleep(0.05)
        shutil.rmtree(path, ignore_errors=True)
        for suffix in (".json", ".waiting"):
            (index_dir / f"{name}{suffix}").unlink(missing_ok=True)
        lock_path.unlink(missing_ok=True)
