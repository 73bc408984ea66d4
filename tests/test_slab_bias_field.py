"""The bias field augmentation multiplies every slice of a 2.5D slab by one in-plane field; 2D is MONAI's."""

import pytest
import torch
from monai.bundle import ConfigParser
from monai.transforms import Compose, RandBiasFieldd

from scripts.transforms.slab_bias_field import SlabRandBiasFieldd
from tests.conftest import BUNDLE

CONFIGS = BUNDLE / "configs"


def test_every_slice_of_a_slab_is_multiplied_by_the_same_field():
    slab = torch.rand(1, 48, 40, 5) + 0.5
    transform = SlabRandBiasFieldd("image", degree=3, coeff_range=(0.2, 0.4), prob=1.0).set_random_state(0)
    factor = torch.as_tensor(transform({"image": slab})["image"]) / slab
    for j in range(5):
        torch.testing.assert_close(factor[..., j], factor[..., 2], rtol=1e-5, atol=0)
    assert float(factor.max() / factor.min()) > 1.5  # a real, uneven field, not a constant


def test_on_one_slice_it_draws_and_applies_monais_field():
    image = torch.rand(1, 48, 40, 1) + 0.5
    ours = SlabRandBiasFieldd("image", degree=3, coeff_range=(0.0, 0.4), prob=0.5).set_random_state(7)
    monai = RandBiasFieldd("image", degree=3, coeff_range=(0.0, 0.4), prob=0.5).set_random_state(7)
    changed = 0
    for _ in range(12):
        expected = torch.as_tensor(monai({"image": image})["image"])
        got = torch.as_tensor(ours({"image": image})["image"])
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
        changed += not torch.allclose(got, image)
    assert 0 < changed < 12  # both skipped and applied draws were compared


def test_without_in_plane_it_is_monais_3d_field_that_varies_between_slices():
    slab = torch.rand(1, 48, 40, 5) + 0.5
    ours = SlabRandBiasFieldd("image", in_plane=False, coeff_range=(0.2, 0.4), prob=1.0).set_random_state(1)
    monai = RandBiasFieldd("image", coeff_range=(0.2, 0.4), prob=1.0).set_random_state(1)
    got = torch.as_tensor(ours({"image": slab})["image"])
    torch.testing.assert_close(got, torch.as_tensor(monai({"image": slab})["image"]))
    factor = got / slab
    assert not torch.allclose(factor[..., 0], factor[..., 2], rtol=0.05)


@pytest.mark.parametrize(("mode_file", "slices_alike"), [("train_2.5d.json", True), ("train_3d.json", False)])
def test_the_training_appearance_augmentation_keeps_2_5d_slabs_consistent(mode_file, slices_alike):
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), str(CONFIGS / mode_file)])
    augment = Compose(parser.get_parsed_content("train#appearance_augmentation_transforms"))
    augment.set_random_state(3)
    slab = (torch.rand(1, 48, 40, 1) + 0.5).repeat(1, 1, 1, 5)  # five identical neighbouring slices
    differ = []
    for _ in range(20):
        out = torch.as_tensor(augment({"image": slab.clone()})["image"])
        differ.append(not torch.allclose(out[..., 0], out[..., 2], rtol=1e-5, atol=1e-6))
    assert not any(differ) if slices_alike else any(differ)
