"""RandWidenCsfd: dark spaces inside the label grow by the drawn width, the label and everything outside it stay."""

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, RandAdjustContrastd
from scipy import ndimage

from scripts.transforms.widen_csf import RandWidenCsfd

WHITE, GREY, CSF = 1.0, 0.6, 0.1


def head_slice(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """White matter disk, a grey-matter ring, a CSF rim inside the label and one sulcus; skull outside the label."""
    y, x = np.indices((size, size)) - (size - 1) / 2
    radius = np.hypot(x, y)
    image = np.select([radius < 14, radius < 18, radius < 20, radius < 24], [WHITE, GREY, CSF, 1.5], 0.0)
    sulcus = (np.abs(x) < 1) & (y > 8) & (radius < 20)
    image[sulcus] = CSF
    return image.astype(np.float32), (radius < 20)


def sample(slices: int = 1) -> dict:
    image, label = head_slice()
    return {
        "image": MetaTensor(torch.from_numpy(image)[None, ..., None].repeat(1, 1, 1, slices), meta={"seen": 1}),
        "label": torch.from_numpy(label.astype(np.float32))[None, ..., None].repeat(1, 1, 1, slices),
    }


def test_dark_spaces_inside_the_label_grow_by_the_width_and_nothing_else_changes():
    data = sample()
    widen = RandWidenCsfd(keys="image", prob=1.0, width_range=(2.0, 2.0), dark_percentile=15)
    out = widen(data)
    before, after = data["image"][0, ..., 0].numpy(), out["image"][0, ..., 0].numpy()
    label = data["label"][0, ..., 0].numpy() > 0.5
    torch.testing.assert_close(out["label"], data["label"])
    np.testing.assert_array_equal(after[~label], before[~label])  # skull and background untouched
    assert (after <= before + 1e-6).all()  # nothing brightens
    dark = label & (before <= CSF)
    distance = ndimage.distance_transform_edt(~dark)
    faded, kept = label & (distance <= 2) & ~dark, label & (distance > 3)
    assert faded.sum() > 100
    np.testing.assert_allclose(after[faded], CSF, atol=1e-6)  # grey matter beside the CSF became CSF
    np.testing.assert_array_equal(after[kept], before[kept])  # deeper tissue kept
    assert isinstance(out["image"], MetaTensor) and out["image"].meta["seen"] == 1


def test_width_is_drawn_from_its_range_and_prob_zero_is_the_identity():
    data = sample()
    widen = RandWidenCsfd(keys="image", prob=1.0, width_range=(0.5, 2.0)).set_random_state(7)
    outputs = [widen(data)["image"] for _ in range(6)]
    faded_areas = [int((o != data["image"]).sum()) for o in outputs]
    assert len(set(faded_areas)) > 1  # different widths fade different areas
    again = RandWidenCsfd(keys="image", prob=1.0, width_range=(0.5, 2.0)).set_random_state(7)
    torch.testing.assert_close(again(data)["image"], outputs[0])
    off = RandWidenCsfd(keys="image", prob=0.0)(data)
    torch.testing.assert_close(off["image"], data["image"], rtol=0, atol=0)


@pytest.mark.parametrize("slices", [1, 5])
def test_every_slice_of_a_slab_is_widened_alike(slices):
    out = RandWidenCsfd(keys="image", prob=1.0, width_range=(1.5, 1.5))(sample(slices))["image"]
    for s in range(1, slices):
        torch.testing.assert_close(out[..., s], out[..., 0])
    assert not torch.equal(out, sample(slices)["image"])


def test_in_a_compose_with_the_other_appearance_augmentations():
    augment = Compose(
        [RandWidenCsfd(keys="image", prob=1.0), RandAdjustContrastd("image", gamma=(0.5, 2.0), prob=1.0)]
    ).set_random_state(0)
    out = augment(sample())
    assert out["image"].shape == (1, 64, 64, 1) and torch.isfinite(out["image"]).all()
