"""Ignite ``DiskSaver`` that survives power cuts: every checkpoint goes through the bundle's durable write."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import ignite.distributed as idist
from ignite.handlers import DiskSaver

from scripts.common.durable_write import save_durably


class DurableDiskSaver(DiskSaver):
    """``DiskSaver(atomic=True)`` renames a temporary file into place but never calls ``fsync``, so after a power cut
    the final name can point at an empty file. This saver flushes the data before the rename and the directory after
    it, and deletes a checkpoint that Ignite retires only once the new one is durable (Ignite deletes first, which
    leaves no ``best.pth`` at all if the process dies in between). Temporary files are ``.tmp-*.part``, never a
    final name.
    """

    def __init__(self, dirname: str | Path, save_on_rank: int = 0, **kwargs) -> None:
        super().__init__(
            dirname, atomic=True, create_dir=True, require_empty=False, save_on_rank=save_on_rank, **kwargs
        )
        self._retired: list[str] = []
        # leftovers of a process killed mid-write: the run lock, taken before, keeps every live process out of the folder
        if idist.get_rank() == save_on_rank:
            for stale in self.dirname.glob(".tmp-*.part"):
                stale.unlink(missing_ok=True)

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        super().__call__(checkpoint, filename, metadata)
        for old in self._retired:
            if old != filename:
                (self.dirname / old).unlink(missing_ok=True)
        self._retired.clear()

    def remove(self, filename: str) -> None:
        if idist.get_rank() == self.save_on_rank:
            self._retired.append(filename)

    def _save_func(self, checkpoint: Mapping, path: Path, func: Callable) -> None:
        save_durably(checkpoint, path, func, **self.kwargs)  # a failed write: a WriteError naming the checkpoint
