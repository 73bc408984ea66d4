import pytest
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


CLASSES = {"background": 0, "shell": 2, "core": 5}


def _label_map() -> torch.Tensor:
    labels = torch.zeros(1, 12, 12, 12, dtype=torch.uint8)
    labels[0, 1:8, 1:8, 1:8] = 2
    labels[0, 3:6, 3:6, 3:6] = 5  # a core inside the shell: a "hole" of class 2 that must stay class 5
    labels[0, 10, 10, 10] = 2  # a speck of each class
    labels[0, 10, 1, 1] = 5
    return labels


def test_by_default_a_label_map_of_several_classes_keeps_every_part_and_a_binary_mask_one():
    labels = _label_map()
    assert torch.equal(LargestComponentd("pred", classes=CLASSES)({"pred": labels.clone()})["pred"], labels)
    assert int(LargestComponentd("pred", enabled="auto")({"pred": _mask_with_island_and_hole()})["pred"].sum()) == 7**3


def test_several_classes_keep_each_ones_largest_component_and_no_hole_is_filled():
    out = LargestComponentd("pred", enabled=True, classes=CLASSES)({"pred": _label_map()})["pred"]
    assert out[0, 10, 10, 10] == 0 and out[0, 10, 1, 1] == 0
    assert int((out == 5).sum()) == 27 and int((out == 2).sum()) == 7**3 - 27


def test_the_step_can_be_limited_to_some_classes_by_name_or_value():
    for chosen in (["core"], [5], ["5"]):
        out = LargestComponentd("pred", enabled=chosen, classes=CLASSES)({"pred": _label_map()})["pred"]
        assert out[0, 10, 1, 1] == 0 and out[0, 10, 10, 10] == 2, chosen


def test_a_class_the_model_does_not_have_is_refused_with_the_choices():
    with pytest.raises(
        SystemExit, match=r"'liver' is not a foreground class; name some of shell \(2\), core \(5\), or pass auto"
    ):
        LargestComponentd("pred", enabled=["liver"], classes=CLASSES)


def test_one_hot_predictions_of_evaluation_are_cleaned_per_channel():
    labels = _label_map()
    onehot = torch.cat([labels == v for v in (0, 2, 5)]).to(torch.float32)
    out = LargestComponentd("pred", enabled=True, classes=CLASSES)({"pred": onehot})["pred"]
    assert out[1, 10, 10, 10] == 0 and out[2, 10, 1, 1] == 0 and int(out[2].sum()) == 27
