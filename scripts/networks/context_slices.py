"""2.5D: each slice goes to the 2D network with its ``context_slices`` neighbours on each side as channels."""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.data import MetaTensor
from monai.engines import PrepareBatch, default_prepare_batch
from monai.inferers import Inferer
from monai.utils import convert_to_dst_type

from scripts.networks.slicing import slice_axes


def slab_to_channels(slabs: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W, 2k+1]`` slabs -> ``[N, C*(2k+1), H, W]``: channel ``c*(2k+1) + j`` is slice ``j`` of
    channel ``c``, i.e. neighbours from the lowest to the highest slice index, the centre slice in the middle."""
    n, c, h, w, depth = slabs.shape
    return slabs.permute(0, 1, 4, 2, 3).reshape(n, c * depth, h, w)


def context_stack(volume: torch.Tensor, context_slices: int, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """For slices ``start..stop-1`` of ``[B, C, H, W, D]`` volumes, the network inputs ``[B*(stop-start),
    C*(2k+1), H, W]`` (volume-major); slices beyond the first and last are replicated (edge padding)."""
    depth = volume.shape[-1]
    stop = depth if stop is None else stop
    k = int(context_slices)
    centres = torch.arange(start, stop, device=volume.device)
    index = (centres[:, None] + torch.arange(-k, k + 1, device=volume.device)[None]).clamp(0, depth - 1)
    slabs = volume[..., index]  # [B, C, H, W, n, 2k+1]
    b, c, h, w, n, width = slabs.shape
    return slab_to_channels(slabs.permute(0, 4, 1, 2, 3, 5).reshape(b * n, c, h, w, width))


class ContextSlicePrepareBatch(PrepareBatch):
    """``prepare_batch`` for 2.5D training: a batch of slabs ``[N, C, H, W, 2k+1]`` (sampled around a centre slice,
    edges replicate-padded by the config's ``BorderPadd``) becomes inputs ``[N, C*(2k+1), H, W]`` and the centre
    slice of the label ``[N, 1, H, W]``; then ``augmentation`` moves all channels of a slab alike, if given."""

    def __init__(self, augmentation: Callable | None = None) -> None:
        self.augmentation = augmentation

    def __call__(self, batchdata, device=None, non_blocking=False, **kwargs):
        image, label = default_prepare_batch(batchdata, device, non_blocking, **kwargs)
        centre = label.shape[-1] // 2
        image, label = slab_to_channels(image), label[..., centre]
        if self.augmentation is None:
            return image, label
        return self.augmentation(image, label, slice_axes(batchdata, 1))


class ContextSliceInferer(Inferer):
    """Run a 2D (``context_slices=0``) or 2.5D network over whole ``[B, C, H, W, D]`` volumes, ``slice_batch`` slices
    per forward pass, each with its neighbours stacked by :func:`context_stack`; returns ``[B, out, H, W, D]``.
    Memory is bounded by ``slice_batch``, not by the depth of the scan. MONAI's ``SliceInferer`` runs a sliding
    window of one-slice windows with its aggregation bookkeeping (+8% over the forward on a 180-slice scan); slices
    already fitted to the network's input size need none."""

    def __init__(self, context_slices: int, slice_batch: int = 32) -> None:
        super().__init__()
        self.context_slices, self.slice_batch = int(context_slices), int(slice_batch)

    def __call__(self, inputs: torch.Tensor, network: Callable, *args, **kwargs) -> torch.Tensor:
        # plain tensors through the network: MetaTensor's per-layer metadata bookkeeping made the forward take 9% longer
        volume = inputs.as_tensor() if isinstance(inputs, MetaTensor) else inputs
        batch, depth = volume.shape[0], volume.shape[-1]
        outputs = []
        for start in range(0, depth, self.slice_batch):
            stop = min(depth, start + self.slice_batch)
            pred = network(context_stack(volume, self.context_slices, start, stop), *args, **kwargs)
            outputs.append(pred.reshape(batch, stop - start, *pred.shape[1:]).permute(0, 2, 3, 4, 1))
        # the input's type and dtype, as SliceInferer's: Invertd skips plain predictions, and fp16 logits under AMP
        # overflow the sums of the validation loss
        return convert_to_dst_type(torch.cat(outputs, dim=-1), inputs)[0]
