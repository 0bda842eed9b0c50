"""Parsing and chunking in worker processes bounded in time and memory, so one hostile file cannot hang or kill the app."""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
import traceback
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable

from zhiku.ingest.chunking import Chunker, TextChunk
import zhiku.ingest.parsers  # noqa: F401  (so the fork server preloads the default parser)
from zhiku.core.errors import FileRejected, ZhikuError

log = logging.getLogger(__name__)

DEFAULT_PARSE = "zhiku.ingest.parsers:parse_bytes"
_MB = 1024 * 1024
_START_TIMEOUT = 120.0  # a cold start imports the parsers; the per-file timeout starts after it


@dataclass(frozen=True)
class ParseLimits:
    """Per-file bounds of one parse: wall-clock seconds and address space of the worker process."""

    timeout: float = 120.0
    memory_mb: int = 2048


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker process needs to start: its limits, the parse function and the chunk budget."""

    limits: ParseLimits = ParseLimits()
    parse: str = DEFAULT_PARSE  # "module:function"; tests point it at hostile stand-ins
    chunk_tokens: int = 220
    chunk_overlap: int = 40


def load_function(path: str) -> Callable:
    """The function named by 'module:function'."""
    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"expected 'module:function', got {path!r}")
    return getattr(importlib.import_module(module), name)


# ------------------------------------------------------------------ child side
def _limit_memory(memory_mb: int) -> None:
    """Cap the address space so a runaway allocation raises MemoryError here, not in the app."""
    try:
        import resource
    except ImportError:  # not on Windows: the timeout still applies
        return
    limit = memory_mb * _MB
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _exit_with_parent() -> None:
    """Exit when the app dies, even in the middle of a parse that never returns."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(3)

    threading.Thread(target=watch, name="zhiku-parent-watch", daemon=True).start()


def _handle(parse: Callable, chunker: Chunker, data: bytes, file_name: str) -> tuple[str, object]:
    """Parse and chunk one file; every outcome becomes a picklable (kind, value) reply."""
    try:
        return "ok", chunker.split(parse(data, file_name))
    except FileRejected as e:
        return "rejected", str(e)
    except MemoryError:
        return "memory", None
    except RecursionError:
        return "error", "the file is nested too deeply to parse"
    except Exception as e:  # a parser bug on one file must fail that file only
        return "error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=-3)}"


def _serve(conn, config: WorkerConfig) -> None:
    """A worker's main loop: one (data, file_name) request in, one reply out, until the pipe closes."""
    _exit_with_parent()  # the watcher thread's stack must exist before the address space is capped
    parse = load_function(config.parse)
    chunker = Chunker(config.chunk_tokens, config.chunk_overlap)
    _limit_memory(config.limits.memory_mb)
    conn.send(("ready", None))
    while True:
        try:
            data, file_name = conn.recv()
        except (EOFError, OSError):
            return
        reply = _handle(parse, chunker, data, file_name)
        del data
        try:
            conn.send(reply)
        except MemoryError:
            conn.send(("memory", None))


# ----------------------------------------------------------------- parent side
def _context():
    """'forkserver' with the parsers preloaded (a new worker is a cheap fork); 'spawn' where it is missing."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        # '__main__' too, so workers do not re-import the app's entry script one by one
        ctx.set_forkserver_preload(["__main__", __name__])
        return ctx
    return multiprocessing.get_context("spawn")


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


class _Worker:
    """One worker process and the pipe to it; replaced after a timeout or a crash."""

    def __init__(self, ctx, config: WorkerConfig):
        self._ctx = ctx
        self._config = config
        self._process = None
        self._conn = None

    def _start(self) -> None:
        """Start a worker and wait until it is ready, so its start-up never counts against a file's timeout."""
        parent, child = self._ctx.Pipe()
        self._process = self._ctx.Process(target=_serve, args=(child, self._config), daemon=True,
                                          name="zhiku-parse")
        self._process.start()
        child.close()
        self._conn = parent
        try:
            if parent.poll(_START_TIMEOUT) and parent.recv()[0] == "ready":
                return
        except (EOFError, OSError) as e:
            raise ZhikuError(f"the parser process could not start ({self._crash_reason()})") from e
        self.stop()
        raise ZhikuError(f"the parser process did not start within {_START_TIMEOUT:g} s; the machine may be overloaded")

    def run(self, data: bytes, file_name: str) -> list[TextChunk]:
        """Parse and chunk one file in the worker; FileRejected with a reason on any failure."""
        if self._process is None or not self._process.is_alive():
            self.stop()
            self._start()
        limits = self._config.limits
        try:
            self._conn.send((data, file_name))
            if not self._conn.poll(limits.timeout):
                self.stop()
                raise FileRejected(
                    f"parsing took longer than {limits.timeout:g} s; the file may be damaged or hostile: "
                    "check it, or raise ZHIKU_PARSE_TIMEOUT"
                )
            kind, value = self._conn.recv()
        except (EOFError, OSError) as e:
            raise FileRejected(self._crash_reason()) from e
        return self._reply(kind, value, file_name)

    def _reply(self, kind: str, value, file_name: str) -> list[TextChunk]:
        if kind == "ok":
            return value
        if kind == "memory":
            self.stop()  # a fresh process, not one with a fragmented heap
            raise FileRejected(self._memory_reason())
        if kind == "error":
            log.warning("parser failed on %s: %s", file_name, value)
            raise FileRejected(f"the file could not be parsed ({value.splitlines()[0]}); it may be damaged")
        raise FileRejected(value)

    def _memory_reason(self) -> str:
        return (f"parsing needed more than {self._config.limits.memory_mb} MB of memory; the file may be "
                "damaged or hostile: check it, or raise ZHIKU_PARSE_MEMORY_MB")

    def _crash_reason(self) -> str:
        """Why the worker died, from its exit status."""
        code = self._wait_exit()
        self.stop()
        if code is not None and code < 0:
            name = _signal_name(code)
            if name == "SIGKILL":  # the kernel's OOM killer sends SIGKILL
                return f"the parser was killed (SIGKILL, possibly out of memory); {self._memory_reason()}"
            return f"the parser crashed ({name}) on this file; it may be damaged or hostile"
        return f"the parser exited unexpectedly (exit code {code}); the file may be damaged or hostile"

    def _wait_exit(self) -> int | None:
        self._process.join(timeout=5)
        return self._process.exitcode

    def stop(self) -> None:
        """Kill the process (it may be stuck in C code that ignores everything else) and reap it."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            if self._process.pid is not None:  # start() may have failed before the process existed
                if self._process.is_alive():
                    self._process.kill()
                self._process.join(timeout=5)
            self._process = None


_STOP = object()


class ParsePool:
    """A small pool of reusable worker processes that parse and chunk files, each file bounded in time and memory.

    Use as a context manager around an ingestion run: workers start once and serve every file.
    """

    def __init__(self, config: WorkerConfig | None = None, *, workers: int = 1):
        self.config = config or WorkerConfig()
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        ctx = _context()
        self._threads = [
            threading.Thread(target=self._dispatch, args=(_Worker(ctx, self.config),), daemon=True,
                             name=f"zhiku-parse-{i}")
            for i in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, data: bytes, file_name: str) -> Future:
        """Queue one file; the future holds its chunks or raises FileRejected with the reason."""
        future: Future = Future()
        self._tasks.put((future, data, file_name))
        return future

    def parse(self, data: bytes, file_name: str) -> list[TextChunk]:
        """Parse and chunk one file, waiting for the result."""
        return self.submit(data, file_name).result()

    def _dispatch(self, worker: _Worker) -> None:
        """Feed one worker from the queue; the thread owns the worker, so no locking is needed."""
        try:
            while (task := self._tasks.get()) is not _STOP:
                future, data, file_name = task
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(worker.run(data, file_name))
                except BaseException as e:  # the caller sees every failure through the future
                    future.set_exception(e)
                del task, data
        finally:
            worker.stop()

    def close(self) -> None:
        """Stop every worker process."""
        for _ in self._threads:
            self._tasks.put(_STOP)
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
