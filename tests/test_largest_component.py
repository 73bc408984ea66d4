import torch

from scripts.transforms.largest_component import LargestComponentd


def _mask_with_island_and_hole() -> torch.Tensor:
    mask = torch.zeros(1, 12, 12, 12, dtype=torch.uint8)
    mask[0, 1:8, 1:8, 1:8] = 1  # the organ
    mask[0, 4, 4, 4] = 0  # a hole inside it
    mask[0, 10, 10, 10] = 1  # a separate speck
    return mask


def test_keeps_the_largest_component_and_fills_its_holes():
    out = LargestComponentd("pred")({"pred": _mask_with_island_and_hole()})["pred"]
    assert out[0, 10, 10, 10] == 0
    assert out[0, 4, 4, 4] == 1
    assert int(out.sum()) == 7**3


def test_disabled_from_the_command_line_leaves_the_mask_alone():
    mask = _mask_with_island_and_hole()
    out = LargestComponentd("pred", enabled="false")({"pred": mask.clone()})["pred"]
    assert torch.equal(out, mask)
