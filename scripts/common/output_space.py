"""Check, before any scan is read, that the folders a run writes to take files and have room for them.

Without this, a read-only or full disk is found when the first mask is written, after that scan's work, as a
traceback from deep inside the writer (the cause, ``Errno 30``, buried in it), once per scan."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

NIFTI_HEADER_BYTES = 352  # a NIfTI-1 header and its end-of-extensions marker


def writable_problem(folder: str, key: str = "output_dir") -> str | None:
    """``None`` if files can be created in ``folder`` (made if missing), else a line saying why not."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as error:
        return f"{key}={folder}: cannot write there ({error.strerror or type(error).__name__}); pass --{key} with a writable folder"
    return None


def readable(size: float) -> str:
    """``53.1 kB``, ``16.8 MB``, ``2.41 GB``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6)):
        if size >= scale:
            return f"{size / scale:.{2 if unit == 'GB' else 1}f} {unit}"
    return f"{size / 1e3:.1f} kB"


def space_problem(folders: list[tuple[str, str]], needed: int) -> str | None:
    """``None`` if the file system of ``folders`` (``[(folder, key), ...]``, all on one device) has ``needed`` bytes
    free, else a line naming the first folder and its key."""
    folder, key = folders[0]
    free = shutil.disk_usage(folder).free
    if free >= needed:
        return None
    return (
        f"{key}={folder}: {readable(free)} free, but the files to write need up to {readable(needed)} "
        f"(uncompressed); free some space or pass --{key} on another disk"
    )


def output_problems(needs: dict[str, tuple[str, int]]) -> list[str]:
    """One line per folder that cannot take its files: ``needs`` maps each folder to ``(key, bytes to write there)``.

    Each folder is made if missing and a file is created and removed in it (``os.access`` says yes to root on a
    read-only file system, so only a real write tells); the bytes of the folders on each file system are added up
    and compared with its free space; the folders made are removed again. Sizes are uncompressed (how well a mask
    compresses is not known in advance)."""
    found = []
    by_device: dict[int, tuple[list[tuple[str, str]], int]] = {}
    made = [p for folder in needs for p in (Path(folder), *Path(folder).parents) if not p.exists()]
    try:
        for folder, (key, size) in needs.items():
            if problem := writable_problem(folder, key):
                found.append(problem)
                continue
            device = os.stat(folder).st_dev
            folders, total = by_device.get(device, ([], 0))
            by_device[device] = ([*folders, (folder, key)], total + size)
        for folders, total in by_device.values():
            if problem := space_problem(folders, total):
                found.append(problem)
    finally:  # the savers make the folders they write to; a check leaves none behind (a refused run, a later error)
        for path in sorted(set(made), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    return found
