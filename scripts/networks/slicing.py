"""Turn batches of volumes into batches of slices for a 2D network: the prepare_batch of 2D and 3D training."""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.engines import PrepareBatch, default_prepare_batch

from scripts.transforms.slice_augmentation import in_plane_axes

NORMAL_KEY = "slice_normal"  # where SliceAxisd records each training item's slice normal


def slice_axes(batchdata, per_item: int) -> torch.Tensor | None:
    """The world axes of the rows and columns of every slice (``per_item`` slices per batch item), from the normals
    ``SliceAxisd(normal_key=NORMAL_KEY)`` recorded; ``None`` when it recorded none."""
    if not isinstance(batchdata, dict) or NORMAL_KEY not in batchdata:
        return None
    return in_plane_axes(torch.as_tensor(batchdata[NORMAL_KEY]).flatten()).repeat_interleave(per_item, dim=0)


def volumes_to_slices(volumes: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W, D]`` -> ``[B*D, C, H, W]``, volume-major: slice ``d`` of volume ``b`` lands at ``b*D + d``."""
    if volumes.ndim != 5:
        raise ValueError(f"expected a [B, C, H, W, D] batch, got shape {tuple(volumes.shape)}")
    b, c, h, w, d = volumes.shape
    return volumes.permute(0, 4, 1, 2, 3).reshape(b * d, c, h, w)


class SlicePrepareBatch(PrepareBatch):
    """``prepare_batch`` for MONAI engines: moves a volume batch to the device and flattens it into slices,
    so the trainer, loss and 2D network all see ``[B*D, C, H, W]``; then applies ``augmentation`` (e.g.
    :class:`scripts.transforms.slice_augmentation.SliceAugmentation`) to image and label slices, if given, with the
    world axes of each slice's rows and columns."""

    def __init__(self, augmentation: Callable | None = None) -> None:
        self.augmentation = augmentation

    def __call__(self, batchdata, device=None, non_blocking=False, **kwargs):
        image, label = default_prepare_batch(batchdata, device, non_blocking, **kwargs)
        depth = image.shape[-1]
        image, label = volumes_to_slices(image), volumes_to_slices(label)
        if self.augmentation is None:
            return image, label
        return self.augmentation(image, label, slice_axes(batchdata, depth))


class PatchPrepareBatch(PrepareBatch):
    """``prepare_batch`` for the 3D network: the default one, then ``augmentation`` of the ``[N, C, H, W, D]``
    patches and their labels, if given."""

    def __init__(self, augmentation: Callable | None = None) -> None:
        self.augmentation = augmentation

    def __call__(self, batchdata, device=None, non_blocking=False, **kwargs):
        image, label = default_prepare_batch(batchdata, device, non_blocking, **kwargs)
        if self.augmentation is None:
            return image, label
        return self.augmentation(image, label, slice_axes(batchdata, 1))
