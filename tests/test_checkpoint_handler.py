"""best.pth / last.pth / periodic_####.pth written by a real 6-epoch run."""

import math

import pytest
import torch
from ignite.engine import Events

from tests.conftest import checkpoint_dir, make_workflow

KEYS = {
    "epoch",
    "global_step",
    "monitor_value",
    "model_state",
    "optimizer_state",
    "scheduler_state",
    "scaler_state",
    "early_stopping_state",
    "config",
    "model_settings",
}


@pytest.fixture(scope="module")
def six_epochs(tmp_path_factory):
    from tests.conftest import write_dataset

    root = tmp_path_factory.mktemp("ckpt")
    workflow = make_workflow(root, write_dataset(root / "data"), epochs=6, ckpt_period=1, ckpt_keep=3)
    val_losses = {}
    workflow.evaluator.add_event_handler(
        Events.EPOCH_COMPLETED, lambda e: val_losses.__setitem__(e.state.epoch, e.state.metrics["val_loss"])
    )
    workflow.run()
    workflow.finalize()
    return root, checkpoint_dir(root / "runs"), val_losses


def test_files_and_retention(six_epochs):
    _, ckpts, _ = six_epochs
    names = sorted(p.name for p in ckpts.iterdir())
    assert names == ["best.pth", "last.pth", "periodic_0004.pth", "periodic_0005.pth", "periodic_0006.pth"]


def test_every_checkpoint_has_the_keys_and_loads_with_weights_only(six_epochs):
    _, ckpts, _ = six_epochs
    for path in ckpts.iterdir():
        state = torch.load(path, weights_only=True)
        assert set(state) == KEYS, path
        assert state["config"]["epochs"] == 6
        assert set(state["early_stopping_state"]) >= {"counter", "best_score", "best_epoch"}
    last = torch.load(ckpts / "last.pth", weights_only=True)
    assert last["epoch"] == 6 and last["global_step"] == 12
    assert torch.load(ckpts / "periodic_0004.pth", weights_only=True)["epoch"] == 4


def test_best_is_the_lowest_validation_loss_and_model_pt_holds_it(six_epochs):
    root, ckpts, val_losses = six_epochs
    best = torch.load(ckpts / "best.pth", weights_only=True)
    best_epoch = min(val_losses, key=val_losses.get)
    assert best["epoch"] == best_epoch
    assert math.isclose(best["monitor_value"], val_losses[best_epoch], rel_tol=1e-6)
    model = torch.load(root / "models" / "model.pt", weights_only=True)
    assert all(torch.equal(model[k], best["model_state"][k]) for k in model)
