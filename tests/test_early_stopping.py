import torch
from ignite.engine import Events

from tests.conftest import checkpoint_dir, make_workflow


def test_stops_on_a_plateau_and_restores_the_best_weights(dataset, tmp_path, capfd):
    # an improvement must beat min_delta=100, so only the first validation ever counts as one
    workflow = make_workflow(tmp_path, dataset, epochs=10, early_stop_patience=2, early_stop_min_delta=100.0)
    val_losses = {}
    workflow.evaluator.add_event_handler(
        Events.EPOCH_COMPLETED, lambda e: val_losses.__setitem__(e.state.epoch, e.state.metrics["val_loss"])
    )
    workflow.run()
    log = capfd.readouterr().out
    workflow.finalize()
    assert workflow.trainer.state.epoch == 3
    assert "Early stopping at epoch 3" in log

    ckpts = checkpoint_dir(tmp_path / "runs")
    best = torch.load(ckpts / "best.pth", weights_only=True)
    # the weights put back are those of the lowest validation loss (best.pth), whatever min_delta says
    assert best["epoch"] == min(val_losses, key=val_losses.get)
    assert f"Restored best weights from epoch {best['epoch']}" in log
    last = torch.load(ckpts / "last.pth", weights_only=True)
    assert last["early_stopping_state"]["counter"] == 2 and last["early_stopping_state"]["best_epoch"] == 1
    model = torch.load(tmp_path / "models" / "model.pt", weights_only=True)
    network = workflow.parser.get_parsed_content("network")
    for key, tensor in best["model_state"].items():
        assert torch.equal(model[key], tensor) and torch.equal(network.state_dict()[key], tensor)
    if best["epoch"] != last["epoch"]:
        assert any(not torch.equal(best["model_state"][k], last["model_state"][k]) for k in best["model_state"])
