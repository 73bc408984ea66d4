import torch

from scripts.precise_bn import update_bn_stats


def test_running_stats_equal_the_exact_statistics_of_the_calibration_data():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(3, momentum=0.1)
    model = torch.nn.Sequential(bn, torch.nn.Dropout(0.5))
    batches = [torch.randn(n, 3, 5, 4) * (i + 1) + i for i, n in enumerate((7, 2, 11))]
    used = update_bn_stats(model, batches, slice_batch=4)  # uneven micro-batches: 4+3, 2, 4+4+3

    data = torch.cat(batches).double().transpose(0, 1).reshape(3, -1)
    assert used == 20
    assert torch.allclose(bn.running_mean.double(), data.mean(1), atol=1e-5)
    assert torch.allclose(bn.running_var.double(), data.var(1, unbiased=True), rtol=1e-4)
    assert bn.momentum == 0.1 and model.training  # settings put back


def test_momentum_averaging_would_not_be_exact():
    """The reason the function exists: PyTorch's own running stats after the same data differ."""
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(1)
    batches = [torch.randn(4, 1, 8, 8) + i for i in range(5)]
    for batch in batches:
        bn(batch)
    exact = torch.cat(batches).mean()
    assert abs(float(bn.running_mean) - float(exact)) > 0.5
    update_bn_stats(bn, batches, slice_batch=4)
    assert abs(float(bn.running_mean) - float(exact)) < 1e-5


def test_dropout_is_off_and_eval_layers_untouched_during_calibration():
    seen = []
    drop = torch.nn.Dropout(0.9)
    drop.register_forward_hook(lambda m, i, o: seen.append(m.training))
    model = torch.nn.Sequential(torch.nn.BatchNorm2d(1), drop)
    update_bn_stats(model, [torch.randn(2, 1, 4, 4)], slice_batch=8)
    assert seen == [False]
