"""The one check of a scan, shared by training's data check (``scripts/data/verify_data.py``) and inference
(``scripts/data/inference_cases.py``): a scan that training would refuse is never predicted either, and both say
what is wrong with it in the same words.

A scan is usable when its file reads to the end (the compressed voxels too, not only the header: a truncated
``.nii.gz`` has a whole header), holds one grey 3D volume (a trailing fourth axis of size 1 is fine) of a size that
fits in memory and is at least 2 voxels along each axis, with positive voxel spacings, and its voxels are finite and
not all equal (an all-zero scan gives the network nothing to segment, and a briefly trained model marked 94 % of one
as brain)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scripts.data.nifti_reader import close_streams, header_problem, open_nifti

MIN_VOXELS_PER_AXIS = 2  # one slice is an image, not a volume to slice along three planes


class ScanError(ValueError):
    """Why a scan cannot be used, with the fix; the message leaves out the file, which the caller names."""


def _unreadable(path: Path, error: Exception) -> ScanError:
    """A dangling link (a moved or unmounted data folder) says so; anything else gives the reader's error."""
    if path.is_symlink() and not path.exists():
        return ScanError(f"a link to {path.readlink()}, which does not exist; fix the link or remove it")
    return ScanError(f"unreadable NIfTI ({type(error).__name__}: {str(error)[:80]}); re-export or remove the file")


def read_volume(path) -> tuple:
    """``(image, voxels)`` of a readable, single-channel 3D NIfTI file with a usable grid (labels as well as scans);
    :class:`ScanError` otherwise. RGB voxels and volumes too large for memory are refused from the header, before
    anything is decompressed."""
    path, img = Path(path), None
    try:
        img = open_nifti(path)
        if problem := header_problem(img):
            raise ScanError(problem)
        voxels = np.asanyarray(img.dataobj)
    except ScanError:
        raise
    except Exception as error:  # nibabel, gzip and the OS raise many types for truncated, missing or odd files
        raise _unreadable(path, error) from None
    finally:
        if img is not None:
            close_streams([img])
    if voxels.ndim == 4 and voxels.shape[3] == 1:
        voxels = voxels[..., 0]
    if voxels.ndim != 3:
        raise ScanError(
            f"shape {voxels.shape} is not 3D; give one 3D volume per file (a trailing 4th axis of size 1 is fine)"
        )
    if min(voxels.shape) < MIN_VOXELS_PER_AXIS:
        raise ScanError(
            f"shape {voxels.shape} has fewer than {MIN_VOXELS_PER_AXIS} voxels along an axis; give a 3D volume, "
            "not a single slice"
        )
    zooms = img.header.get_zooms()[:3]
    if np.any(np.linalg.norm(img.affine[:3, :3], axis=0) <= 0) or np.any(np.asarray(zooms) <= 0):
        raise ScanError(
            f"voxel spacing {tuple(float(z) for z in zooms)} is zero or negative; fix pixdim/affine in the header"
        )
    return img, voxels


def intensity_problem(voxels: np.ndarray) -> str | None:
    """NaN or Inf voxels (normalisation turns the whole scan into NaN) or a constant scan; ``None`` when usable."""
    if voxels.dtype.kind in "fc":
        bad = int(voxels.size - np.count_nonzero(np.isfinite(voxels)))
        if bad:
            return f"{bad} NaN or Inf voxel(s); replace them (e.g. with 0) or leave the scan out"
    low, high = voxels.min(), voxels.max()
    if low == high:
        return f"constant image (every voxel {float(low):g}); remove it or re-export"
    return None


def check_scan(path) -> tuple:
    """``(image, voxels)`` of a scan the network can take (:func:`read_volume` and :func:`intensity_problem`);
    :class:`ScanError` naming the first problem otherwise."""
    img, voxels = read_volume(path)
    if problem := intensity_problem(voxels):
        raise ScanError(problem)
    return img, voxels
