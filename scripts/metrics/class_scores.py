"""Per-class scores of a label map against a reference label map on the same grid: what a multi-class
leave-one-source-out table reports for each class (``scripts.studies.tissue_kmeans`` uses it for its baseline)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np


def class_dice(pred: np.ndarray, truth: np.ndarray, values) -> dict[int, float]:
    """Dice of each value in ``values`` between two label maps of one shape; NaN for a value neither map holds."""
    if pred.shape != truth.shape:
        raise SystemExit(f"label maps of shapes {pred.shape} and {truth.shape} cannot be compared")
    scores = {}
    for value in values:
        p, t = pred == value, truth == value
        total = int(p.sum()) + int(t.sum())
        scores[int(value)] = 2.0 * float((p & t).sum()) / total if total else float("nan")
    return scores


def per_class_dice(pred_path: Path, label_path: Path, values) -> dict[int, float]:
    """``class_dice`` of two label map files, which must lie on the same grid."""
    pred, label = nib.load(pred_path), nib.load(label_path)
    if pred.shape != label.shape or not np.allclose(pred.affine, label.affine, atol=1e-4):
        raise SystemExit(f"{pred_path} is not on the grid of {label_path} ({pred.shape} vs {label.shape})")
    return class_dice(np.asarray(pred.dataobj), np.asarray(label.dataobj), values)
