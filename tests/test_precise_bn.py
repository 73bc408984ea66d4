import torch
from ignite.engine import Engine, Events

from scripts.handlers.precise_bn import BatchNormCalibration, average_batch_statistics, restore_momentum


def batches(n: int) -> list[torch.Tensor]:
    torch.manual_seed(0)
    return [torch.randn(4, 2, 5, 5) * (i + 1) + 3 * i for i in range(n)]


def expected(used: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    means = torch.stack([b.transpose(0, 1).reshape(2, -1).mean(1) for b in used])
    variances = torch.stack([b.transpose(0, 1).reshape(2, -1).var(1, unbiased=True) for b in used])
    return means.mean(0), variances.mean(0)


def test_running_stats_become_the_plain_average_of_the_batches_seen():
    bn = torch.nn.BatchNorm2d(2, momentum=0.1)
    data = batches(5)
    bn(data[0])  # history that the reset forgets
    momenta = average_batch_statistics(bn)
    for batch in data[1:]:
        bn(batch)
    restore_momentum(bn, momenta)
    mean, var = expected(data[1:])
    assert torch.allclose(bn.running_mean, mean, atol=1e-5) and torch.allclose(bn.running_var, var, rtol=1e-5)
    assert bn.momentum == 0.1


def test_momentum_averaging_would_not_be_the_average():
    """The reason the handler exists: with momentum 0.1 the last batches dominate."""
    bn = torch.nn.BatchNorm2d(2)
    data = batches(5)
    for batch in data:
        bn(batch)
    assert (bn.running_mean - expected(data)[0]).abs().max() > 1.0


def test_windows_end_at_validation_epochs_and_stop_at_the_previous_validation():
    calibration = BatchNormCalibration(torch.nn.BatchNorm2d(1), num_batches=4, interval=2)
    assert calibration.window(1, 3) == (3, 6) and calibration.window(6, 3) == (3, 6)
    assert calibration.window(7, 3) == (9, 12)
    calibration.num_batches = 10
    assert calibration.window(1, 3) == (1, 6) and calibration.window(7, 3) == (7, 12)


def run(model, data, epoch_length, max_epochs, calibration, seen, state=None):
    def step(engine, _):
        model.train()
        model(data[engine.state.iteration - 1])

    engine = Engine(step)
    calibration.attach(engine)
    engine.add_event_handler(
        Events.EPOCH_COMPLETED(every=calibration.interval),
        lambda e: seen.append((e.state.epoch, model.running_mean.clone(), model.momentum)),
    )
    if state:
        engine.load_state_dict(state)
    engine.run(range(epoch_length), max_epochs=max_epochs)


def test_handler_averages_the_last_iterations_before_each_validation():
    data, bn, seen = batches(12), torch.nn.BatchNorm2d(2, momentum=0.1), []
    run(
        bn,
        data,
        epoch_length=3,
        max_epochs=4,
        calibration=BatchNormCalibration(bn, num_batches=4, interval=2),
        seen=seen,
    )
    assert [epoch for epoch, _, _ in seen] == [2, 4]
    assert torch.allclose(seen[0][1], expected(data[2:6])[0], atol=1e-5)  # iterations 3-6
    assert torch.allclose(seen[1][1], expected(data[8:12])[0], atol=1e-5)  # iterations 9-12
    assert all(momentum == 0.1 for _, _, momentum in seen)  # validation runs with the usual momentum back


def test_a_run_resumed_inside_a_window_ends_with_the_same_statistics():
    data = batches(6)
    whole, seen_whole = torch.nn.BatchNorm2d(2), []
    run(whole, data, 3, 2, BatchNormCalibration(whole, num_batches=5, interval=2), seen_whole)  # window: iterations 2-6

    first, seen = torch.nn.BatchNorm2d(2), []
    run(first, data, 3, 1, BatchNormCalibration(first, num_batches=5, interval=2), seen)  # stops at iteration 3
    resumed = torch.nn.BatchNorm2d(2)
    resumed.load_state_dict(first.state_dict())  # what a checkpoint carries
    run(
        resumed,
        data,
        3,
        2,
        BatchNormCalibration(resumed, num_batches=5, interval=2),
        seen,
        state={"epoch": 1, "max_epochs": 2, "epoch_length": 3},
    )
    assert torch.allclose(seen[-1][1], seen_whole[-1][1], atol=1e-6)
    assert torch.allclose(seen_whole[-1][1], expected(data[1:6])[0], atol=1e-5)


def test_disabled_or_without_batchnorm_it_attaches_nothing():
    engine = Engine(lambda e, b: None)
    BatchNormCalibration(torch.nn.BatchNorm2d(1), enabled=False).attach(engine)
    BatchNormCalibration(torch.nn.Conv2d(1, 1, 1)).attach(engine)
    assert not engine.has_event_handler(BatchNormCalibration._start_window, Events.ITERATION_STARTED)
    assert sum(len(v) for v in engine._event_handlers.values()) == 0
