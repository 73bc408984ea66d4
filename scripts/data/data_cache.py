"""The training dataset with its deterministic preprocessing cached: on disk (default), in memory, or not at all."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from collections.abc import Callable, Sequence
from copy import deepcopy

import torch
from monai.data import CacheDataset, Dataset, PersistentDataset
from monai.data.utils import pickle_hashing
from monai.utils import convert_to_tensor

from scripts.common.durable_write import save_durably

CACHE_MODES = ("disk", "memory", "none")

logger = logging.getLogger(__name__)


def hash_with_file_stats(item: dict) -> bytes:
    """Cache key of one data item: its dict plus the size, modification time, status-change time and inode of every
    file it names, so a scan replaced under the same name is preprocessed again (MONAI's default key is the file name
    alone). The status-change time cannot be set by ``cp -p``, ``tar`` or ``touch -r``, which keep size and mtime; it
    costs one ``stat``, where a digest of a 1 mm scan's bytes would cost a read of the file at every draw."""
    stats = {}
    for key, value in item.items():
        if isinstance(value, str) and os.path.isfile(value):
            status = os.stat(value)
            stats[key] = (status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino)
    return pickle_hashing({"item": item, "file_stats": stats})


def hash_transform_settings(transforms: Sequence) -> bytes:
    """Cache key of the cached transforms with their settings (spatial size, normalisation, slice axis...): MONAI's
    ``json_hashing`` cannot serialise transform objects and falls back to their class names, which would reuse
    items cached with other settings."""
    return hashlib.sha256(pickle.dumps(list(transforms), protocol=4)).hexdigest().encode()


class DiskCacheDataset(PersistentDataset):
    """``PersistentDataset`` whose cache heals itself and never stops training.

    MONAI's writes each entry in ``$TMPDIR`` and moves it (across filesystems a plain copy, never fsynced), and a
    truncated or emptied entry raises ``EOFError``/``RuntimeError`` at every later run without naming the file. Here an
    entry is written durably inside ``cache_dir`` (temporary file, fsync, rename); one that cannot be read is logged
    with its path, deleted and rebuilt; and when an entry cannot be written (disk full, folder read-only) the item is
    computed without the cache and one warning names the folder (the cache only saves time).
    """

    _warned = False  # set on the instance at its first failed write

    def _cachecheck(self, item_transformed):
        if self.cache_dir is None:
            return super()._cachecheck(item_transformed)
        path = self.cache_dir / f"{self.hash_func(item_transformed).decode('utf-8')}{self.transform_hash}.pt"
        if path.is_file():
            try:
                return torch.load(path, weights_only=True)  # plain tensors: no pickled code runs
            except Exception as error:  # truncated, emptied or foreign: torch raises several types
                logger.warning("cache entry %s is unreadable (%s); deleted and rebuilt", path, type(error).__name__)
                path.unlink(missing_ok=True)
        item = self._pre_transform(deepcopy(item_transformed))
        try:
            save_durably(
                convert_to_tensor(item, convert_numeric=False, track_meta=self.track_meta),
                path,
                save=torch.save,
                pickle_protocol=self.pickle_protocol,
            )
        except OSError as error:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "cache_dir=%s: cannot write the cache (%s); training goes on without it, slower. Free "
                    "space there, or pass --cache_dir with room or --cache none",
                    self.cache_dir,
                    error.strerror or error,
                )
        return item


def training_dataset(
    data: Sequence, transform: Callable, cache: str = "disk", cache_dir: str | None = None, num_workers: int = 0
) -> Dataset:
    """``cache``: ``disk`` keeps each volume's loaded, oriented, normalised and in-plane-fitted form in ``cache_dir``
    (PersistentDataset: memory does not grow with the dataset, later runs on the same data start warm); ``memory``
    keeps it in RAM (CacheDataset: fastest, memory grows with the dataset); ``none`` recomputes it every time."""
    if cache == "disk":
        if not cache_dir:
            raise ValueError("cache=disk needs a cache_dir")
        # plain tensors (track_meta=False) load with weights_only=True; nothing after the cache needs the affine
        return DiskCacheDataset(
            data,
            transform,
            cache_dir=cache_dir,
            hash_func=hash_with_file_stats,
            hash_transform=hash_transform_settings,
            track_meta=False,
            weights_only=True,
        )
    if cache == "memory":
        return CacheDataset(data, transform, cache_rate=1.0, num_workers=num_workers or None, progress=False)
    if cache == "none":
        return Dataset(data, transform)
    raise ValueError(f"cache={cache!r}: use one of {', '.join(CACHE_MODES)}")
