"""Write the skull-stripped scan: the input file's voxels where the mask is 1, zero elsewhere, as SynthStrip's ``-o``
and deepbet's brain output do."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform
from monai.utils import ImageMetaKey

from scripts.common.durable_write import replace_durably
from scripts.data.nifti_reader import load_nifti

logger = logging.getLogger(__name__)


def skull_stripped(img: nib.Nifti1Image, voxels: np.ndarray, mask: np.ndarray) -> nib.Nifti1Image:
    """``voxels`` where ``mask`` (on their grid) is set, 0 elsewhere, in the scan's own data type, affine and header:
    the file reads like the scan it came from (same viewer settings, same type for the tools that follow)."""
    brain = np.where(mask.reshape(voxels.shape) > 0, voxels, 0).astype(voxels.dtype, copy=False)
    return nib.Nifti1Image(brain, img.affine, img.header)


class SaveBraind(MapTransform):
    """After the mask is saved: the scan the mask was predicted from (``keys``' ``filename_or_obj``) read again from
    its file, masked and written to the item's ``path_key`` atomically (as the masks are). The network's input cannot
    serve, as it is reoriented and normalised; the file gives the original values. Items without ``path_key``
    (``save_brain`` off) pass untouched."""

    def __init__(self, keys: KeysCollection = "pred", path_key: str = "brain_path") -> None:
        super().__init__(keys)
        self.path_key = path_key

    def __call__(self, data):
        d = dict(data)
        if self.path_key not in d:
            return d
        for key in self.key_iterator(d):
            mask = d[key]
            img, voxels = load_nifti(mask.meta[ImageMetaKey.FILENAME_OR_OBJ])
            brain = skull_stripped(img, voxels, np.asarray(mask.detach().cpu())[0])
            final = Path(d[self.path_key])
            suffix = ".nii.gz" if final.name.endswith(".nii.gz") else final.suffix
            replace_durably(lambda tmp: nib.save(brain, tmp), final, suffix=suffix)
            logger.info("wrote %s", final)
        return d
