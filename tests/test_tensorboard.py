"""TensorBoard event files of a real run hold every promised tag (read back with tensorboard's reader)."""

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import make_workflow


def load(log_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(log_dir), size_guidance={"histograms": 0, "images": 0, "scalars": 0})
    events.Reload()
    return events


def test_train_and_validation_tags(dataset, tmp_path):
    workflow = make_workflow(tmp_path, dataset, epochs=2)
    workflow.run()
    workflow.finalize()
    root = tmp_path / "runs" / "SMALabeller"
    train = load(next(root.glob("*-trn_cls-exp")))
    val = load(next(root.glob("*-val_cls-exp")))

    scalars = set(train.Tags()["scalars"])
    assert {"train_loss_batch", "lr", "grad_norm", "iteration_seconds", "train_loss"} <= scalars
    assert len(train.Scalars("lr")) == 4 and len(train.Scalars("train_loss")) == 2
    histograms = train.Tags()["histograms"]
    assert any(t.startswith("weights/") for t in histograms) and any(t.startswith("grads/") for t in histograms)

    assert {"val_loss", "val_mean_dice", "best_epoch", "epochs_without_improvement"} <= set(val.Tags()["scalars"])
    assert [e.step for e in val.Scalars("val_mean_dice")] == [1, 2]
    assert {"validation/most_foreground", "validation/middle"} <= set(val.Tags()["images"])
    image = val.Images("validation/most_foreground")[0]
    assert image.width == 3 * image.height or image.width > image.height  # image | label | prediction

    hparams = load(next(root.glob("*-trn_cls-exp")) / "hparams")
    assert "hparam/val_mean_dice" in hparams.Tags()["scalars"]
    plugin = hparams.PluginTagToContent("hparams")
    assert plugin, "no hparams summary written"
