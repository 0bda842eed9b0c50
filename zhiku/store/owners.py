"""Who holds a job: host, pid and start time, so a dead or restarted process is recognised at once."""

from __future__ import annotations

import os
import socket
from functools import lru_cache


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), so a reused pid is not mistaken for it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # the command name may contain spaces and parentheses: fields start after the last ')'
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


@lru_cache(maxsize=1)
def _host() -> str:
    return socket.gethostname()


def process_owner(pid: int | None = None) -> str:
    """This process's identity in job claims: host, pid and start time."""
    pid = os.getpid() if pid is None else pid
    return f"{_host()}:{pid}:{_start_time(pid) or ''}"


def owner_dead(owner: str | None) -> bool:
    """True only when the owner is a process on this host that no longer runs (others wait for the lease)."""
    if not owner:
        return True
    parts = owner.rsplit(":", 2)
    if len(parts) != 3:
        return True
    host, pid, started = parts
    if host != _host() or not pid.isdigit():
        return False
    if started:
        return _start_time(int(pid)) != started
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
