"""The segmentation losses the bundle offers, by name."""

from __future__ import annotations

import torch
from monai.losses import DiceCELoss, DiceLoss

# batch=True: Dice over all slices of a batch, so slices without foreground do not dominate (as nnU-Net 2D)
LOSSES = {
    "dice": lambda: DiceLoss(sigmoid=True, batch=True, smooth_nr=1e-5, smooth_dr=1e-5),
    "cross_entropy": lambda: torch.nn.BCEWithLogitsLoss(),
    # with one output channel MONAI's DiceCELoss uses binary cross-entropy on the logits
    "combination": lambda: DiceCELoss(sigmoid=True, batch=True, smooth_nr=1e-5, smooth_dr=1e-5),
}


def build_loss(name: str) -> torch.nn.Module:
    """``dice`` | ``cross_entropy`` (BCE with logits) | ``combination`` (Dice + BCE), for one-channel logits."""
    if name not in LOSSES:
        raise ValueError(f"loss_function={name!r} is unknown: use one of {', '.join(LOSSES)}")
    return LOSSES[name]()
