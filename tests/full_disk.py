"""A disk that fills up, for a real subprocess: ``env=full_disk_env(...)`` makes every file opened for writing under
a folder, after the first ``files_before`` of them, fail with ``ENOSPC`` once it holds 64 bytes, as a full disk does.

A small tmpfs would be the real thing, but mounting one needs privileges a CI runner may not grant. The failure is
injected where the system would raise it, in the Python file object's ``write``, through a ``sitecustomize`` module
put first on ``PYTHONPATH``: torch's checkpoint writer, nibabel and the CSV writer all write through such objects, so
each reacts as it does on a full disk (torch with its ``RuntimeError: [enforce fail at inline_container.cc]
unexpected pos``). Only the durable writes' temporary files (``.tmp-*``) are counted, so what fills is the bundle's
outputs, not the log or TensorBoard's event files."""

from __future__ import annotations

import errno
import os
from pathlib import Path

BUNDLE = Path(__file__).resolve().parents[1]  # not from conftest: the subprocess imports this module at start-up


class FullDiskFile:
    """The real file, which takes the disk's last 64 bytes, then fails its writes as a full disk does: midway, as
    a real disk fills (torch's checkpoint writer, which writes small records, then fails as it does for real, with
    ``RuntimeError: [enforce fail at inline_container.cc] unexpected pos``)."""

    def __init__(self, file):
        self._file, self._room = file, 64

    def write(self, data):
        if len(data) > self._room:  # what fits is written, then the disk is full
            self._file.write(bytes(data)[: self._room] if isinstance(data, (bytes, bytearray, memoryview)) else "")
            self._room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()

    def __iter__(self):
        return iter(self._file)


SITECUSTOMIZE = """
import builtins, io, os

from tests.full_disk import FullDiskFile

_folder = os.path.realpath(os.environ["FULL_DISK_FOLDER"])
_left = [int(os.environ["FULL_DISK_FILES_BEFORE"])]
_real_open = builtins.open


def _open(file, mode="r", *args, **kwargs):
    handle = _real_open(file, mode, *args, **kwargs)
    if isinstance(file, (str, bytes, os.PathLike)) and "w" in mode:
        path = os.path.realpath(os.fsdecode(file))
        if path.startswith(_folder + os.sep) and os.path.basename(path).startswith(".tmp-"):
            if _left[0] <= 0:
                return FullDiskFile(handle)
            _left[0] -= 1
    return handle


builtins.open = io.open = _open
"""


def full_disk_env(tmp_path: Path, folder: Path, files_before: int = 0) -> dict:
    """Environment for ``run_module``/``run_bundle``: the disk under ``folder`` is full after ``files_before``
    written files."""
    inject = tmp_path / "full_disk_inject"
    inject.mkdir(exist_ok=True)
    (inject / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {
        "PYTHONPATH": f"{inject}:{BUNDLE}",
        "FULL_DISK_FOLDER": str(folder),
        "FULL_DISK_FILES_BEFORE": str(files_before),
    }
