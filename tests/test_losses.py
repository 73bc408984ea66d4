import pytest
import torch

from scripts.networks.losses import build_loss


@pytest.mark.parametrize("name", ["dice", "cross_entropy", "combination"])
def test_each_loss_is_low_for_a_right_answer_and_high_for_a_wrong_one(name):
    label = torch.zeros(4, 1, 16, 16)
    label[:, :, 4:12, 4:12] = 1
    loss = build_loss(name)
    right, wrong = loss(label * 20 - 10, label), loss(10 - label * 20, label)
    assert torch.isfinite(right) and right < 0.05 < wrong


def test_combination_is_dice_plus_cross_entropy():
    logits, label = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.5).float()
    total = build_loss("combination")(logits, label)
    assert torch.allclose(total, build_loss("dice")(logits, label) + build_loss("cross_entropy")(logits, label))


def test_unknown_loss_lists_the_choices():
    with pytest.raises(ValueError, match="dice, cross_entropy, combination"):
        build_loss("focal")


@pytest.mark.parametrize("name", ["dice", "cross_entropy", "combination"])
def test_several_classes_take_class_indices_and_softmax_logits(name):
    label = torch.zeros(4, 1, 16, 16)
    label[:, :, 4:12, 4:12] = 1
    label[:, :, 6:10, 6:10] = 2
    onehot = torch.cat([label == c for c in range(3)], dim=1).float()
    loss = build_loss(name, channels=3)
    right, wrong = loss(onehot * 20 - 10, label), loss(onehot.roll(1, dims=1) * 20 - 10, label)
    assert torch.isfinite(right) and right < 0.05 < wrong
