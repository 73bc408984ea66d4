"""The training dataset with its deterministic preprocessing cached: on disk (default), in memory, or not at all."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from collections.abc import Callable, Sequence
from copy import deepcopy

from monai.data import CacheDataset, Dataset, PersistentDataset
from monai.data.utils import pickle_hashing

CACHE_MODES = ("disk", "memory", "none")

logger = logging.getLogger(__name__)


def hash_with_file_stats(item: dict) -> bytes:
    """Cache key of one data item: its dict plus the size and modification time of every file it names, so a scan
    replaced under the same name is preprocessed again (MONAI's default key is the file name alone)."""
    stats = {}
    for key, value in item.items():
        if isinstance(value, str) and os.path.isfile(value):
            status = os.stat(value)
            stats[key] = (status.st_size, status.st_mtime_ns)
    return pickle_hashing({"item": item, "file_stats": stats})


def hash_transform_settings(transforms: Sequence) -> bytes:
    """Cache key of the cached transforms with their settings (spatial size, normalisation, slice axis...): MONAI's
    ``json_hashing`` cannot serialise transform objects and falls back to their class names, which would reuse
    items cached with other settings."""
    return hashlib.sha256(pickle.dumps(list(transforms), protocol=4)).hexdigest().encode()


class DiskCacheDataset(PersistentDataset):
    """``PersistentDataset`` that keeps training when a cache file cannot be written (disk full, folder read-only):
    the cache only saves time, so the item is computed without it and one warning names the folder; MONAI's own
    class stops the run with the ``OSError``."""

    _warned = False  # set on the instance at its first failed write

    def _cachecheck(self, item_transformed):
        try:
            return super()._cachecheck(item_transformed)
        except OSError as error:
            if not self._warned:
                self._warned = True
                logger.warning("cache_dir=%s: cannot write the cache (%s); training goes on without it, slower. Free "
                               "space there, or pass --cache_dir with room or --cache none", self.cache_dir,
                               error.strerror or error)
            return self._pre_transform(deepcopy(item_transformed))


def training_dataset(data: Sequence, transform: Callable, cache: str = "disk", cache_dir: str | None = None,
                     num_workers: int = 0) -> Dataset:
    """``cache``: ``disk`` keeps each volume's loaded, oriented, normalised and in-plane-fitted form in ``cache_dir``
    (PersistentDataset: memory does not grow with the dataset, later runs on the same data start warm); ``memory``
    keeps it in RAM (CacheDataset: fastest, memory grows with the dataset); ``none`` recomputes it every time."""
    if cache == "disk":
        if not cache_dir:
            raise ValueError("cache=disk needs a cache_dir")
        # plain tensors (track_meta=False) load with weights_only=True; nothing after the cache needs the affine
        return DiskCacheDataset(data, transform, cache_dir=cache_dir, hash_func=hash_with_file_stats,
                                hash_transform=hash_transform_settings, track_meta=False, weights_only=True)
    if cache == "memory":
        return CacheDataset(data, transform, cache_rate=1.0, num_workers=num_workers or None, progress=False)
    if cache == "none":
        return Dataset(data, transform)
    raise ValueError(f"cache={cache!r}: use one of {', '.join(CACHE_MODES)}")
