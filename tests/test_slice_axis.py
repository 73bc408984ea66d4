"""scripts/transforms/slice_axis.py: which axis the 2D network slices along, invertibly, with a true affine."""

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd, Invertd, LoadImaged, Orientationd

from scripts.transforms.fit_in_plane import FitInPlaned
from scripts.transforms.slice_axis import SliceAxis, SliceAxisd, choose_axis
from tests.conftest import affine_for


def diag_affine(spacing):
    return torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64))


@pytest.mark.parametrize(
    "name, spacing, expected",
    [
        ("auto", (1.0, 1.0, 3.0), 2),
        ("auto", (1.0, 3.0, 1.0), 1),
        ("auto", (3.0, 1.0, 1.0), 0),
        ("auto", (1.0, 1.2, 1.1), 2),
        ("auto", (1.3, 1.3, 1.3), 2),
        ("sagittal", (1.0, 1.0, 3.0), 0),
        ("coronal", (1.0, 1.0, 3.0), 1),
        ("axial", (3.0, 1.0, 1.0), 2),
    ],
)
def test_axis_choice(name, spacing, expected):
    assert choose_axis(name, diag_affine(spacing)) == expected


def test_unknown_name_is_refused():
    with pytest.raises(ValueError, match="slice_axis='oblique'"):
        SliceAxisd("image", slice_axis="oblique")


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_voxels_keep_their_world_position_and_the_inverse_is_exact(axis):
    rng = np.random.default_rng(axis)
    affine = torch.tensor(affine_for((0.9, 1.1, 2.5), (0, 1, 2), flip=False), dtype=torch.float64)
    img = MetaTensor(torch.tensor(rng.normal(size=(1, 5, 6, 7)), dtype=torch.float32), affine=affine)
    permuter = SliceAxis()
    out = permuter(img, axis)
    assert out.shape[-1] == img.shape[1 + axis]
    # the voxel at new index j is the voxel at old index perm^-1(j), and the affines agree on where it is
    for _ in range(5):
        old_index = [int(rng.integers(n)) for n in img.shape[1:]]
        new_index = [old_index[a] for a in {0: (1, 2, 0), 1: (0, 2, 1), 2: (0, 1, 2)}[axis]]
        assert out[(0, *new_index)] == img[(0, *old_index)]
        old_world = affine.numpy() @ np.array([*old_index, 1.0])
        new_world = out.affine.numpy() @ np.array([*new_index, 1.0])
        assert np.allclose(old_world, new_world)
    back = permuter.inverse(out)
    assert torch.equal(back.as_tensor(), img.as_tensor()) and torch.allclose(back.affine.double(), affine)
    assert not back.applied_operations


def test_auto_slices_a_thick_coronal_scan_coronally_and_invertd_restores_its_grid(tmp_path):
    # coronal acquisition: thick (3 mm) voxel axis 2 runs along world A; after RAS it is axis 1
    shape, spacing = (20, 16, 9), (1.0, 1.0, 3.0)
    affine = affine_for(spacing, (0, 2, 1))
    data = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "img.nii.gz")
    pre = Compose(
        [
            LoadImaged("image", image_only=True),
            EnsureChannelFirstd("image"),
            Orientationd("image", axcodes="RAS", labels=None),
            SliceAxisd("image", slice_axis="auto"),
            FitInPlaned("image", spatial_size=32),
        ]
    )
    item = pre({"image": str(tmp_path / "img.nii.gz")})
    assert item["image"].shape[-1] == 9  # the thick axis is the slicing axis
    spacing_after = np.linalg.norm(item["image"].affine.numpy()[:3, :3], axis=0)
    assert np.isclose(spacing_after[2], 3.0)
    item["pred"] = MetaTensor(item["image"].as_tensor().clone(), affine=item["image"].affine, meta=item["image"].meta)
    item["pred"].applied_operations = list(item["image"].applied_operations)
    restored = Invertd("pred", transform=pre, orig_keys="image", nearest_interp=False)(item)["pred"]
    assert tuple(restored.shape[1:]) == shape
    assert np.allclose(restored.affine.numpy(), affine, atol=1e-5)
    # the in-plane fit resamples, so values come back close, not equal
    assert np.corrcoef(restored.numpy().ravel(), data.ravel())[0, 1] > 0.5


def test_image_and_label_get_the_same_axis():
    affine = diag_affine((1.0, 3.0, 1.0))
    image = MetaTensor(torch.zeros(1, 4, 5, 6), affine=affine)
    label = MetaTensor(torch.zeros(1, 4, 5, 6), affine=affine)
    out = SliceAxisd(["image", "label"])({"image": image, "label": label})
    assert out["image"].shape == out["label"].shape == (1, 4, 6, 5)


def test_an_item_naming_its_plane_is_sliced_along_it_and_cases_come_once_per_plane():
    from scripts.data.cases import along_planes

    items = along_planes([{"image": "a"}, {"image": "b"}], ["axial", "coronal", "sagittal"])
    assert [(i["image"], i["slice_plane"]) for i in items[:3]] == [("a", "axial"), ("a", "coronal"), ("a", "sagittal")]
    assert len(items) == 6 and along_planes([{"image": "a"}], ["auto"]) == [{"image": "a", "slice_plane": "auto"}]
    volume = MetaTensor(torch.arange(2 * 3 * 4.0).reshape(1, 2, 3, 4), affine=diag_affine((1.0, 1.0, 3.0)))
    transform = SliceAxisd(keys=["image", "label"], slice_axis="auto", plane_key="slice_plane")
    for plane, shape in (("coronal", (1, 2, 4, 3)), ("sagittal", (1, 3, 4, 2)), ("auto", (1, 2, 3, 4))):
        out = transform({"image": volume, "label": volume.clone(), "slice_plane": plane})
        assert out["image"].shape == out["label"].shape == shape
    assert SliceAxisd(keys="image", slice_axis="coronal")({"image": volume, "slice_plane": "axial"})["image"].shape == (
        1,
        2,
        4,
        3,
    )
