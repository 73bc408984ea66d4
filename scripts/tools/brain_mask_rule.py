"""The project's brain-mask rule, and the step that brings a reference mask drawn by another rule to it.

**The rule**: the brain at its surface. Cerebrum, cerebellum and brainstem, with the ventricles and the CSF inside the
sulci wherever the brain's outer surface closes over them; the CSF between the brain's surface and the dura, the dura
and venous sinuses, skull, scalp, eyes and optic nerves are out; the brainstem ends at the level of the foramen magnum,
in practice the lowest point of the cerebellum. It is the rule of BET- and ROBEX-style skull stripping.

Public scans ship masks drawn by other rules (one runs to the inner skull, one keeps the CSF around the brain, one
follows the cord down to the edge of the field of view), and a model trained on several rules learns an average that
matches none. ``to_rule`` brings such a mask to the project's rule with the scan's own intensities:

1. *tissue* (for a mask that takes in CSF around the brain): the mask less its voxels within ``RIM_MM`` of its edge
   that are darker than halfway between the CSF and grey-matter intensity classes (a three-class Gaussian mixture of
   the intensities within ``CSF_SEARCH_MM`` of the mask, so that the CSF always shows), which drops a band of CSF the
   mask takes in outside the brain;
2. *envelope*: that tissue closed over the sulci (a ball of ``closing_mm``), its largest component, enclosed holes
   (ventricles) filled;
3. *brainstem*: every axial slice below the cerebellum's lowest point is cleared (``cerebellum_bottom``).

A mask that takes in CSF only loses voxels: nothing is added outside it. A tissue map gains the CSF of the sulci and
fissures that its closing spans.
"""

from __future__ import annotations

import numpy as np
from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform
from scipy import ndimage
from sklearn.mixture import GaussianMixture

CSF_SEARCH_MM = 4.0  # the intensity classes are fitted within this distance of the mask, where the outer CSF lies
# only CSF this close to the mask's edge is taken out: the ventricles, joined to the cisterns through the third and
# fourth ventricles, stay in
RIM_MM = 8.0
# the surface closes over gaps up to about twice this wide: the sulci, and the interhemispheric fissure of an average
# (fsavg's stays open with 4 mm: a cleft down to the corpus callosum that BET-style masks do not have)
CLOSING_MM = 8.0
# the medulla and upper cord are 15-30 mm wide; the two cerebellar hemispheres together span about 100 mm, and 40 mm
# near their lowest point
CEREBELLUM_WIDTH_MM = 40.0


def tissue_scale(image: np.ndarray, region: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """CSF, grey and white matter class means inside ``region``: a three-class Gaussian mixture of its intensities."""
    values = image[region]
    values = np.clip(values, *np.percentile(values, [0.5, 99.5]))
    sample = values[:: max(1, values.size // 200_000), None]
    means = np.sort(GaussianMixture(3, random_state=seed).fit(sample).means_.ravel())
    return float(means[0]), float(means[1]), float(means[2])


def largest_component(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask
    return labels == 1 + int(np.argmax(ndimage.sum(mask, labels, range(1, count + 1))))


def envelope(tissue: np.ndarray, spacing: np.ndarray, closing_mm: float = CLOSING_MM) -> np.ndarray:
    """The brain as one solid: ``tissue`` closed with a ball of ``closing_mm`` (by distance transforms: exact for a
    Euclidean ball at any spacing), its largest component, enclosed holes filled."""
    pad = int(np.ceil(closing_mm / spacing.min())) + 1
    padded = np.pad(tissue, pad)
    dilated = ndimage.distance_transform_edt(~padded, sampling=spacing) <= closing_mm
    closed = ndimage.distance_transform_edt(dilated, sampling=spacing) > closing_mm
    return ndimage.binary_fill_holes(largest_component(closed[(slice(pad, -pad),) * 3]))


def cerebellum_bottom(mask: np.ndarray, spacing: np.ndarray, width_mm: float = CEREBELLUM_WIDTH_MM) -> int | None:
    """The lowest axial slice (RAS grid: axis 0 left-right, axis 2 inferior-superior) in which ``mask`` spans
    ``width_mm`` from left to right: below it only the medulla and cord, 15-30 mm wide, remain. ``None`` when no
    slice is that wide."""
    columns = mask.any(axis=1)  # (x, z): which left-right positions each slice reaches
    widths = np.array([np.ptp(np.flatnonzero(c)) + 1 if c.any() else 0 for c in columns.T]) * spacing[0]
    wide = np.flatnonzero(widths >= width_mm)
    return int(wide[0]) if wide.size else None


def ras_grid(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The orientation transforms from an array on ``affine``'s grid to the same array on a RAS grid and back, and
    the RAS grid's voxel spacing (mm)."""
    source = io_orientation(affine)
    forward = ornt_transform(source, axcodes2ornt("RAS"))
    spacing = np.empty(3)
    spacing[forward[:, 0].astype(int)] = np.linalg.norm(affine[:3, :3], axis=0)
    return forward, ornt_transform(axcodes2ornt("RAS"), source), spacing


def to_rule(
    image: np.ndarray, mask: np.ndarray, affine: np.ndarray, kind: str = "csf", closing_mm: float = CLOSING_MM
) -> np.ndarray:
    """``mask`` brought to the project's rule (module docstring) on its own grid; ``image`` is the T1 scan.

    ``kind`` ``csf``: a brain mask that takes in CSF around the brain; all three steps, and nothing is added outside
    it. ``tissue``: a map of brain tissue (grey and white matter, or a segmentation's structures) without the CSF in
    the sulci; step 1 is skipped (the intensities of a blurred average would take the dim cortex and vermis with the
    CSF), and step 2's closing adds the sulcal CSF and the fissures the surface closes over."""
    if kind not in ("csf", "tissue"):
        raise ValueError(f"kind={kind!r}: csf (a mask with CSF around the brain) or tissue (a tissue map)")
    forward, back, spacing = ras_grid(affine)
    image = apply_orientation(np.asarray(image, dtype=np.float32), forward)
    mask = apply_orientation(np.asarray(mask, dtype=bool), forward)
    tissue = mask
    if kind == "csf":
        csf, grey, _ = tissue_scale(image, ndimage.distance_transform_edt(~mask, sampling=spacing) <= CSF_SEARCH_MM)
        rim = ndimage.distance_transform_edt(mask, sampling=spacing) <= RIM_MM
        tissue = mask & ~(rim & (image <= (csf + grey) / 2))
    brain = envelope(tissue, spacing, closing_mm)
    if kind == "csf":
        brain &= mask
    bottom = cerebellum_bottom(brain, spacing)
    if bottom is not None:
        brain[:, :, :bottom] = False
    return apply_orientation(largest_component(brain), back).astype(bool)
