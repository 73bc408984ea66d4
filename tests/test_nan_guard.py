import pytest
import torch

from scripts.handlers.nan_guard import exit_if_stopped
from tests.conftest import checkpoint_dir, make_workflow


def test_nan_loss_stops_the_run_and_keeps_checkpoints(dataset, tmp_path, capfd):
    workflow = make_workflow(tmp_path, dataset, epochs=3)
    real_loss = workflow.trainer.loss_function
    calls = {"n": 0}

    def loss_turning_nan(pred, label):  # epoch 1 has 2 iterations; the 4th call (epoch 2) goes NaN
        calls["n"] += 1
        loss = real_loss(pred, label)
        return loss * float("nan") if calls["n"] == 4 else loss

    workflow.trainer.loss_function = loss_turning_nan
    workflow.run()
    log = capfd.readouterr().out
    ckpts = checkpoint_dir(tmp_path / "runs")
    assert workflow.trainer.state.epoch == 2 and workflow.trainer.state.iteration == 4
    assert "Non-finite loss at epoch 2, iteration 4" in log
    last = torch.load(ckpts / "last.pth", weights_only=True)
    assert last["epoch"] == 1 and all(
        torch.isfinite(t).all() for t in last["model_state"].values() if t.is_floating_point()
    )
    assert sorted(p.name for p in ckpts.iterdir()) == ["best.pth", "last.pth"]
    with pytest.raises(SystemExit, match="non-finite loss at epoch 2, iteration 4"):
        workflow.finalize()
    model = torch.load(tmp_path / "models" / "model.pt", weights_only=True)
    assert all(torch.isfinite(t).all() for t in model.values() if t.is_floating_point())


def test_finite_run_does_not_exit(dataset, tmp_path):
    workflow = make_workflow(tmp_path, dataset)
    workflow.run()
    exit_if_stopped(workflow.trainer)
    workflow.finalize()
