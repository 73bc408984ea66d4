import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import BorderPadd, Compose, RandCropByPosNegLabeld

from scripts.data.slice_sampling import RandSlicesByPosNegLabeld


def volume_with_foreground(depth: int = 12) -> dict:
    """Image voxels hold their slice index; foreground only in slices 3 (4 voxels), 4 (16) and 9 (1)."""
    image = torch.arange(depth, dtype=torch.float32).expand(1, 6, 5, depth).clone()
    label = torch.zeros(1, 6, 5, depth)
    label[0, :2, :2, 3] = 1
    label[0, :4, :4, 4] = 1
    label[0, 0, 0, 9] = 1
    return {"image": image, "label": label, "name": "case_000"}


def slice_frequencies(samples: list[dict], depth: int) -> np.ndarray:
    centres = [int(s["image"][0, 0, 0, s["image"].shape[-1] // 2]) for s in samples]
    return np.bincount(centres, minlength=depth) / len(centres)


@pytest.mark.parametrize("context", [0, 1])
def test_draws_slices_as_monai_crop_by_pos_neg_label(context):
    data = volume_with_foreground()
    slab = 2 * context + 1
    pad = BorderPadd(["image", "label"], spatial_border=[0, 0, context], mode="replicate")
    ours = Compose(
        [pad, RandSlicesByPosNegLabeld(["image", "label"], "label", num_samples=50, slab=slab, pos=0.7, neg=0.3)]
    )
    monai = Compose(
        [
            pad,
            RandCropByPosNegLabeld(
                ["image", "label"], "label", spatial_size=[-1, -1, slab], num_samples=50, pos=0.7, neg=0.3
            ),
        ]
    )
    ours.set_random_state(0)
    monai.set_random_state(1)
    draws = {name: [s for _ in range(120) for s in t(dict(data))] for name, t in (("ours", ours), ("monai", monai))}
    frequencies = {name: slice_frequencies(samples, 12) for name, samples in draws.items()}
    # 6000 draws each: the two distributions agree within sampling noise; foreground slices dominate
    assert np.abs(frequencies["ours"] - frequencies["monai"]).max() < 0.03
    assert frequencies["ours"][3] + frequencies["ours"][4] + frequencies["ours"][9] > 0.7
    sample = draws["ours"][0]
    assert sample["image"].shape == sample["label"].shape == (1, 6, 5, slab)
    centre = int(sample["image"][0, 0, 0, context])
    # the slab holds consecutive slices around the centre (replicated at the ends), label alongside its image
    expected = torch.arange(centre - context, centre + context + 1).clamp(0, 11).float()
    assert torch.equal(sample["image"][0, 0, 0], expected)
    assert torch.equal(sample["label"], data["label"][..., expected.long()])
    assert sample["name"] == "case_000"


def test_label_without_foreground_draws_background_everywhere():
    data = volume_with_foreground()
    data["label"].zero_()
    sampler = RandSlicesByPosNegLabeld(["image", "label"], "label", num_samples=3000, pos=1.0, neg=0.0)
    sampler.set_random_state(0)
    frequencies = slice_frequencies(sampler(data), 12)
    assert np.abs(frequencies - 1 / 12).max() < 0.025


def test_same_seed_same_slices_plain_tensors_out():
    data = volume_with_foreground()
    data["image"] = MetaTensor(data["image"], affine=torch.eye(4))
    draws = []
    for _ in range(2):
        sampler = RandSlicesByPosNegLabeld(["image", "label"], "label", num_samples=16)
        sampler.set_random_state(7)
        draws.append([int(s["image"][0, 0, 0, 0]) for s in sampler(data)])
    assert draws[0] == draws[1]
    assert type(sampler(data)[0]["image"]) is torch.Tensor


@pytest.mark.parametrize("slab", [0, 2])
def test_refuses_an_even_or_empty_slab(slab):
    with pytest.raises(ValueError, match="odd"):
        RandSlicesByPosNegLabeld(["image", "label"], "label", slab=slab)


def test_one_hot_labels_take_channel_zero_as_background():
    data = volume_with_foreground()
    one_hot = torch.cat([1 - data["label"], data["label"]])  # channel 0 is background: nonzero almost everywhere
    sampler = RandSlicesByPosNegLabeld(["image", "label"], "label", num_samples=2000, pos=1.0, neg=0.0)
    sampler.set_random_state(0)
    frequencies = slice_frequencies(sampler({"image": data["image"], "label": one_hot}), 12)
    assert frequencies[[3, 4, 9]].sum() == 1.0  # only slices with foreground in channel 1
    assert abs(frequencies[4] - 16 / 21) < 0.03


def test_balance_classes_draws_a_small_class_as_often_as_a_large_one():
    label = torch.zeros(1, 8, 8, 20)
    label[0, :, :, :15] = 1  # a large class over 15 slices
    label[0, :2, :2, 18] = 2  # a small one in one slice
    draws = {}
    for balanced in (False, True):
        sampler = RandSlicesByPosNegLabeld(
            ["label"], "label", num_samples=2000, pos=1.0, neg=0.0, balance_classes=balanced
        )
        sampler.set_random_state(0)
        draws[balanced] = (sampler.centres(label) == 18).mean()
    assert draws[False] < 0.01 and 0.4 < draws[True] < 0.6
