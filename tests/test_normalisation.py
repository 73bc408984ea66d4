"""The train config's own deterministic transforms bring scans of any intensity range to one scale."""

import nibabel as nib
import torch
from monai.bundle import ConfigParser
from monai.transforms import Compose

from tests.conftest import TRAIN_CONFIG, affine_for, blob_volume


def test_0_to_20_and_0_to_10000_scans_normalise_alike(tmp_path):
    parser = ConfigParser()
    parser.read_config(TRAIN_CONFIG)
    from scripts.transforms.intensity import NormaliseIntensityd

    transforms = parser.get_parsed_content("train#deterministic_transforms")
    # up to the normalisation: the in-plane fit after it resamples the intensities it is checked on
    upto = next(i for i, t in enumerate(transforms) if isinstance(t, NormaliseIntensityd)) + 1
    transform = Compose(transforms[:upto])
    outputs = []
    for scale in (20.0, 10000.0):
        image, label = blob_volume((30, 30, 8), 1.0, seed=3)
        affine = affine_for((1.0, 1.0, 2.0), (0, 1, 2))
        nib.save(nib.Nifti1Image(image * scale, affine), tmp_path / f"i{scale}.nii.gz")
        nib.save(nib.Nifti1Image(label, affine), tmp_path / f"l{scale}.nii.gz")
        out = transform({"image": str(tmp_path / f"i{scale}.nii.gz"), "label": str(tmp_path / f"l{scale}.nii.gz")})
        outputs.append(out["image"])
    low, high = outputs
    assert torch.allclose(low, high, atol=1e-4)
    # default zscore_foreground: the voxels above the Otsu threshold (the bright blob) have mean 0 and std 1, or
    # less where the blob's own std is below the floor (scripts.transforms.intensity.STD_FLOOR), as for this uniform blob
    from scripts.transforms.intensity import otsu_threshold

    assert parser.get_parsed_content("intensity_normalisation") == "zscore_foreground"
    foreground = high[high > otsu_threshold(high)]
    assert abs(float(foreground.mean())) < 0.05 and 0.1 < float(foreground.std()) < 1.05
