"""A small, deterministic synthetic MRI-like dataset so the bundle runs with no data given."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np

logger = logging.getLogger(__name__)

DEMO_CASES = 10


def _affine(rng: np.random.Generator, spacing: np.ndarray, index: int) -> np.ndarray:
    """Axis codes and spacing that differ between cases, as they do between real acquisitions."""
    axes = [(0, 1, 2), (0, 2, 1), (1, 0, 2)][index % 3]  # axial, coronal-like, swapped in-plane
    signs = rng.choice([-1.0, 1.0], size=3)
    affine = np.zeros((4, 4))
    for voxel_axis, world_axis in enumerate(axes):
        affine[world_axis, voxel_axis] = signs[voxel_axis] * spacing[voxel_axis]
    affine[:3, 3] = rng.uniform(-50, 50, size=3)
    affine[3, 3] = 1.0
    return affine


def make_case(index: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, label, affine) of one synthetic scan: blobs brighter than a textured background."""
    rng = np.random.default_rng(seed * 1000 + index)
    shape = (int(rng.integers(56, 80)), int(rng.integers(56, 80)), int(rng.integers(16, 32)))
    spacing = np.array([rng.uniform(0.8, 1.4), rng.uniform(0.8, 1.4), rng.uniform(1.5, 3.0)])
    grid = np.stack(
        np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing, strict=True)], indexing="ij"), axis=-1
    )
    extent = np.array(shape) * spacing

    label = np.zeros(shape, dtype=bool)
    for _ in range(int(rng.integers(1, 4))):
        centre = rng.uniform(0.25, 0.75, size=3) * extent
        radii = rng.uniform(0.08, 0.2, size=3) * extent.min() * np.array([1.0, 1.0, 2.0])
        label |= (((grid - centre) / radii) ** 2).sum(-1) <= 1.0

    head = (((grid - extent / 2) / (extent * 0.45)) ** 2).sum(-1) <= 1.0
    image = 0.3 * head + 0.6 * label + rng.normal(0.0, 0.08, size=shape) * head
    image = np.clip(image, 0.0, None) * float(rng.choice([20.0, 255.0, 1000.0, 10000.0]))
    return image.astype(np.float32), label.astype(np.uint8), _affine(rng, spacing, index)


def ensure_demo_dataset(dataset_dir: str, num_cases: int = DEMO_CASES) -> str:
    """Write the demo dataset into ``dataset_dir`` unless it is already there; return the folder."""
    root = Path(dataset_dir)
    images, labels = root / "imagesTr", root / "labelsTr"
    if labels.is_dir() and len(list(labels.glob("*.nii.gz"))) >= num_cases:
        return str(root)
    logger.info("No dataset given: writing %d synthetic demo volumes to %s", num_cases, root)
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    for index in range(num_cases):
        image, label, affine = make_case(index)
        name = f"demo_{index:03d}"
        nib.save(nib.Nifti1Image(image, affine), images / f"{name}_0000.nii.gz")
        nib.save(nib.Nifti1Image(label, affine), labels / f"{name}.nii.gz")
    return str(root)


def written_if_demo(images_dir: str, demo_dir: str) -> str:
    """``images_dir``, after writing the demo dataset into ``demo_dir`` when ``images_dir`` is its ``imagesTr`` (no data
    given): the demo set is written when training first reads its cases, never by merely parsing the config."""
    if Path(images_dir).resolve() == (Path(demo_dir) / "imagesTr").resolve():
        ensure_demo_dataset(demo_dir)
    return images_dir
