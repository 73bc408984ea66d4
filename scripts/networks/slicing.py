"""Turn batches of volumes into batches of slices for a 2D network: the prepare_batch of 2D and 3D training."""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.engines import PrepareBatch, default_prepare_batch


def volumes_to_slices(volumes: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W, D]`` -> ``[B*D, C, H, W]``, volume-major: slice ``d`` of volume ``b`` lands at ``b*D + d``."""
    if volumes.ndim != 5:
        raise ValueError(f"expected a [B, C, H, W, D] batch, got shape {tuple(volumes.shape)}")
    b, c, h, w, d = volumes.shape
    return volumes.permute(0, 4, 1, 2, 3).reshape(b * d, c, h, w)


class SlicePrepareBatch(PrepareBatch):
    """``prepare_batch`` for MONAI engines: moves a volume batch to the device and flattens it into slices,
    so the trainer, loss and 2D network all see ``[B*D, C, H, W]``; then applies ``augmentation`` (e.g.
    :class:`scripts.transforms.slice_augmentation.SliceAugmentation`) to image and label slices, if given."""

    def __init__(self, augmentation: Callable | None = None) -> None:
        self.augmentation = augmentation

    def __call__(self, batchdata, device=None, non_blocking=False, **kwargs):
        image, label = default_prepare_batch(batchdata, device, non_blocking, **kwargs)
        image, label = volumes_to_slices(image), volumes_to_slices(label)
        return self.augmentation(image, label) if self.augmentation is not None else (image, label)


class PatchPrepareBatch(PrepareBatch):
    """``prepare_batch`` for the 3D network: the default one, then ``augmentation`` of the ``[N, C, H, W, D]``
    patches and their labels, if given."""

    def __init__(self, augmentation: Callable | None = None) -> None:
        self.augmentation = augmentation

    def __call__(self, batchdata, device=None, non_blocking=False, **kwargs):
        image, label = default_prepare_batch(batchdata, device, non_blocking, **kwargs)
        return self.augmentation(image, label) if self.augmentation is not None else (image, label)
