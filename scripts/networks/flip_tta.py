"""Flip test-time augmentation around any MONAI inferer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations

import torch
from monai.inferers import Inferer

from scripts.common.flags import as_bool


class FlipTTAInferer(Inferer):
    """Run ``inferer`` on the input and on its mirror images along every combination of ``spatial_dims``, flip
    each prediction back and return the mean of the logits.

    With the default ``spatial_dims=(2, 3)`` on ``[B, C, H, W, D]`` volumes that is 4 passes (none, H, W, H+W),
    i.e. the two in-plane axes of the slices a 2D network sees. The result is exactly equivariant to those flips,
    whatever the network: flipping the input flips the output.
    """

    def __init__(self, inferer: Inferer, spatial_dims: Sequence[int] = (2, 3)) -> None:
        super().__init__()
        self.inferer = inferer
        dims = tuple(int(d) for d in spatial_dims)
        self.flips = [c for n in range(len(dims) + 1) for c in combinations(dims, n)]

    def __call__(self, inputs: torch.Tensor, network: Callable, *args, **kwargs) -> torch.Tensor:
        total = None
        for dims in self.flips:
            x = torch.flip(inputs, dims) if dims else inputs
            pred = self.inferer(x, network, *args, **kwargs)
            pred = torch.flip(pred, dims) if dims else pred
            total = pred if total is None else total + pred
        return total / len(self.flips)


# the axes of a [B, C, X, Y, Z] RAS volume that flip TTA mirrors, by the name mirror_axes gives them
TTA_AXES = {"LR": 2, "AP": 3}


def with_flip_tta(inferer: Inferer, tta, mirror_axes=tuple(TTA_AXES)) -> Inferer:
    """``inferer`` wrapped in :class:`FlipTTAInferer` when ``tta`` is true (a bool or ``true``/``false``), else
    ``inferer`` itself. It flips the left-right and anterior-posterior axes of RAS volumes, those of them in
    ``mirror_axes`` (a model trained without left-right flips, for lateralised labels, is not averaged with its mirror
    image either)."""
    if not as_bool(tta, "tta"):
        return inferer
    return FlipTTAInferer(inferer, [dim for axis, dim in TTA_AXES.items() if axis in mirror_axes])
