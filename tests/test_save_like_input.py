"""scripts/transforms/save_like_input.py: masks keep the scan's layout and appear under their final name only when complete."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.data.image_writer import NibabelWriter

from scripts.common.durable_write import WriteError
from scripts.data.inference_cases import mask_name
from scripts.transforms.save_like_input import SaveLikeInputd


def prediction(tmp_path, shape, name="case_0000.nii.gz") -> dict:
    affine = np.diag([1.0, 2.0, 3.0, 1.0])
    scan = tmp_path / name
    nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), affine), scan)
    meta = {
        "filename_or_obj": str(scan),
        "affine": torch.as_tensor(affine),
        "original_affine": torch.as_tensor(affine),
        "spatial_shape": np.array(shape[:3]),
        "original_channel_dim": -1 if len(shape) == 4 else "no_channel",
    }
    array = torch.zeros((1, *shape[:3]), dtype=torch.uint8)
    array[0, 1:3, 1:3, 1:3] = 1
    return {"pred": MetaTensor(array, meta=meta)}


def saver(out) -> SaveLikeInputd:
    return SaveLikeInputd(
        keys="pred",
        output_dir=str(out),
        output_postfix="",
        output_ext=".nii.gz",
        output_dtype=np.uint8,
        resample=False,
        separate_folder=False,
        output_name_formatter=mask_name,
    )


@pytest.mark.parametrize("shape", [(4, 5, 6), (4, 5, 6, 1)])
def test_the_mask_has_the_scans_layout_and_no_temporary_file_is_left(tmp_path, shape):
    out = tmp_path / "out"
    saver(out)(prediction(tmp_path, shape))
    mask = nib.load(out / "case.nii.gz")
    assert mask.shape == shape and np.asarray(mask.dataobj).sum() == 8
    assert [p.name for p in out.iterdir()] == ["case.nii.gz"]


def test_a_write_that_fails_leaves_neither_a_partial_mask_nor_a_temporary_file(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "other.nii.gz").write_bytes(b"an earlier mask")

    def killed(self, filename, **kwargs):  # half a file, then the process dies
        with open(filename, "wb") as f:
            f.write(b"\x1f\x8b partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(NibabelWriter, "write", killed)
    # the writer's error itself, naming the file (MONAI's SaveImage would report "cannot find a suitable writer")
    with pytest.raises(WriteError, match=r"cannot write case.nii.gz in .*out: No space left on device"):
        saver(out)(prediction(tmp_path, (4, 5, 6)))
    assert [p.name for p in out.iterdir()] == ["other.nii.gz"]
    assert (out / "other.nii.gz").read_bytes() == b"an earlier mask"
