"""One process trains in a run folder at a time: a second one (a ``--resume true`` while the run is still training)
is refused with one line naming the holder's PID."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import ignite.distributed as idist

_held: dict[Path, object] = {}  # run folder -> open lock file, kept open while this process trains there


def lock_run(run_dir: str) -> None:
    """Take ``<run_dir>/.lock`` (rank 0 only) for the life of the process or until :func:`release_run`. The system
    drops the lock when its holder dies, so a killed run's folder is taken over without a stale lock
    to remove by hand. A POSIX record lock (``lockf``), not ``flock``: forked loader workers do not inherit it, so it
    is free once this process lets it go, whatever its persistent workers still hold open."""
    folder = Path(run_dir).resolve()
    if idist.get_rank() != 0 or folder in _held:
        return
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / ".lock", "a+")
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise SystemExit(
            f"run folder {folder} is in use by process {holder}: wait for it to end (or stop it), or "
            "start a new run without --resume"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    _held[folder] = handle


def release_run(run_dir: str) -> None:
    """Give the folder's lock back (end of training)."""
    handle = _held.pop(Path(run_dir).resolve(), None)
    if handle is not None:
        handle.close()
