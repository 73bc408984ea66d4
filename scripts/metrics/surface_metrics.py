"""Per-case overlap, surface distances in mm and volumes in ml of a binary prediction against its label."""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from monai.metrics import compute_average_surface_distance, compute_dice, compute_hausdorff_distance
from monai.utils import convert_to_numpy

COLUMNS = ("dice", "hd95_mm", "asd_mm", "pred_volume_ml", "true_volume_ml", "fp_volume_ml", "fn_volume_ml")


def voxel_geometry(affine) -> tuple[list[float], float]:
    """(spacing per voxel axis in mm, voxel volume in ml) from a 4x4 voxel-to-world affine."""
    matrix = np.asarray(affine, dtype=np.float64)[:3, :3]
    spacing = np.linalg.norm(matrix, axis=0).tolist()
    return spacing, abs(float(np.linalg.det(matrix))) / 1000.0


def _binary(x) -> torch.Tensor:
    """``[1, 1, H, W, D]`` float 0/1 on the CPU from any binary array or (Meta)Tensor of 3 or 4 dimensions."""
    array = convert_to_numpy(x)
    return torch.from_numpy(array > 0.5).float().reshape(1, 1, *array.shape[-3:])


def case_metrics(pred, label, affine) -> dict[str, float]:
    """Dice, 95th-percentile Hausdorff distance and symmetric average surface distance (both in mm, from the
    voxel spacing of ``affine``), predicted and true volume, false-positive and false-negative volume in ml.

    ``pred`` and ``label`` are binary ``[1, H, W, D]`` (or ``[H, W, D]``) arrays on the same grid. When only one
    of them is empty, Dice is 0 and the distances are ``nan`` (undefined); when both are, Dice is 1 and the
    distances 0.
    """
    p, y = _binary(pred), _binary(label)
    if p.shape != y.shape:
        raise ValueError(f"prediction {tuple(p.shape[2:])} and label {tuple(y.shape[2:])} are not on the same grid")
    spacing, voxel_ml = voxel_geometry(affine)
    n_pred, n_true = float(p.sum()), float(y.sum())
    if n_pred == 0 and n_true == 0:  # nothing to find and nothing found: a perfect prediction
        dice, hd95, asd = 1.0, 0.0, 0.0
    elif n_pred == 0 or n_true == 0:  # no surface to measure to
        dice, hd95, asd = 0.0, math.nan, math.nan
    else:
        dice = float(compute_dice(p, y, include_background=True)[0, 0])
        with warnings.catch_warnings():  # MONAI 1.6 passes its own deprecated argument internally
            warnings.filterwarnings("ignore", message=".*always_return_as_numpy", category=FutureWarning)
            hd95 = compute_hausdorff_distance(p, y, include_background=True, percentile=95, spacing=spacing)
            asd = compute_average_surface_distance(p, y, include_background=True, symmetric=True, spacing=spacing)
        hd95, asd = float(hd95[0, 0]), float(asd[0, 0])
    return {
        "dice": dice,
        "hd95_mm": hd95,
        "asd_mm": asd,
        "pred_volume_ml": n_pred * voxel_ml,
        "true_volume_ml": n_true * voxel_ml,
        "fp_volume_ml": float((p * (1 - y)).sum()) * voxel_ml,
        "fn_volume_ml": float(((1 - p) * y).sum()) * voxel_ml,
    }
