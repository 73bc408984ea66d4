import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd, Orientationd

from scripts.transforms.fit_in_plane import FitInPlane, FitInPlaned


def world(affine, index):
    return (np.asarray(affine, dtype=float) @ np.array([*index, 1.0]))[:3]


def test_longer_physical_side_fills_the_size_and_aspect_is_kept():
    # 40 x 20 voxels at 0.5 x 2.0 mm: 20 mm x 40 mm, so W is the longer physical side
    img = MetaTensor(torch.ones(1, 40, 20, 7), affine=torch.diag(torch.tensor([0.5, 2.0, 3.0, 1.0])))
    out = FitInPlane(64)(img - 2.0)  # -1 everywhere: the padding (the lowest value) is -1 too
    assert out.shape == (1, 64, 64, 7) and torch.all(out == -1.0)
    img[0, 0, 0] = 0.0  # the lowest value, so the padding is 0
    out = FitInPlane(64)(img)
    rows = out[0, :, :, 0].sum(1) > 0
    cols = out[0, :, :, 0].sum(0) > 0
    assert cols.sum() == 64 and rows.sum() == 32  # 20 mm : 40 mm
    spacing = torch.linalg.norm(out.affine[:3, :3], dim=0)
    assert torch.allclose(spacing[:2], torch.tensor([40 / 64, 40 / 64], dtype=spacing.dtype))
    assert spacing[2] == 3.0


def test_affine_maps_the_same_world_point():
    img = MetaTensor(torch.zeros(1, 30, 50, 5), affine=torch.diag(torch.tensor([1.0, 1.0, 2.0, 1.0])))
    img[0, 10, 25, 2] = 1.0
    out = FitInPlane(100, mode="nearest")(img)
    hit = torch.nonzero(out[0] > 0)[0].tolist()
    assert np.allclose(world(out.affine, hit), world(img.affine, (10, 25, 2)), atol=1.0)


@pytest.mark.parametrize(
    "axcodes_affine",
    [np.diag([-0.8, 1.2, 2.5, 1.0]), np.array([[0, 0, 2.0, 5], [0.7, 0, 0, 3], [0, -1.1, 0, 1], [0, 0, 0, 1]])],
)
def test_invert_restores_shape_affine_and_values(axcodes_affine):
    image = torch.zeros(1, 33, 27, 9)
    image[:, 8:20, 5:18, 2:7] = 1.0
    img = MetaTensor(image, affine=torch.tensor(axcodes_affine))
    transform = Compose([Orientationd(keys="image", axcodes="RAS"), FitInPlaned(keys="image", spatial_size=48)])
    data = transform({"image": img.clone()})
    data["pred"] = data["image"].clone()
    restored = Invertd(keys="pred", transform=transform, orig_keys="image", nearest_interp=False)(data)["pred"]
    assert restored.shape == img.shape
    assert np.allclose(np.asarray(restored.affine), axcodes_affine)
    assert ((restored > 0.5) == (image > 0.5)).float().mean() > 0.97


def test_padding_is_the_volumes_lowest_value_its_background():
    image = torch.full((1, 40, 20, 3), 1.5)
    image[0, :5] = -2.2  # a z-scored scan: air is negative, 0 is the head's mean
    out = FitInPlane(32)(MetaTensor(image, affine=torch.eye(4)))
    assert torch.all(out[0, :, :4] == -2.2) and torch.all(out[0, :, -4:] == -2.2)
