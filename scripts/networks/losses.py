"""The segmentation losses the bundle offers, by name, for one sigmoid channel (two classes) or a softmax over one
channel per class (labels hold class indices, ``scripts.transforms.class_indices``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss, DiceLoss

# the one list of the losses by name: the config check, the Tune search space and loss_function's description read it
LOSSES = {
    "dice": "soft Dice",
    "cross_entropy": "cross-entropy (binary for two classes)",
    "combination": "Dice + cross-entropy",
}
LOSS_NAMES = tuple(LOSSES)
# batch=True: Dice over all slices of a batch, so slices without foreground do not dominate (as nnU-Net 2D)
DICE_ARGS = {"batch": True, "smooth_nr": 1e-5, "smooth_dr": 1e-5}


class IndexCrossEntropy(torch.nn.Module):
    """Cross-entropy of ``[B, C, ...]`` logits against ``[B, 1, ...]`` class indices: torch's takes the indices
    without their channel axis and as integers."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target[:, 0].long())


def build_loss(name: str, channels: int = 1) -> torch.nn.Module:
    """The loss called ``name`` (:data:`LOSSES`). One channel: sigmoid Dice and binary
    cross-entropy on the logits. Several: softmax Dice over the classes but background (as nnU-Net) and cross-entropy
    over all of them, the targets' indices made one-hot by MONAI."""
    if name not in LOSS_NAMES:
        raise ValueError(f"loss_function={name!r} is unknown: use one of {', '.join(LOSS_NAMES)}")
    if int(channels) == 1:
        # with one output channel MONAI's DiceCELoss uses binary cross-entropy on the logits
        return {
            "dice": lambda: DiceLoss(sigmoid=True, **DICE_ARGS),
            "cross_entropy": torch.nn.BCEWithLogitsLoss,
            "combination": lambda: DiceCELoss(sigmoid=True, **DICE_ARGS),
        }[name]()
    softmax = {"softmax": True, "to_onehot_y": True, "include_background": False, **DICE_ARGS}
    return {
        "dice": lambda: DiceLoss(**softmax),
        "cross_entropy": IndexCrossEntropy,
        "combination": lambda: DiceCELoss(**softmax),
    }[name]()
