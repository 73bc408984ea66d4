"""TensorBoard event files of a real run hold every promised tag (read back with tensorboard's reader)."""

import logging
from pathlib import Path

import pytest
import torch
from ignite.engine import Engine
from monai.bundle import ConfigWorkflow
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from scripts.handlers.early_stopping import EarlyStoppingOnValidation
from scripts.tracking.hparams_logger import HParamsLogger
from scripts.tracking.network_graph import NetworkGraph
from tests.conftest import BUNDLE, FAST, LOGGING, METADATA, TRAIN_CONFIG, make_workflow

TRAIN_2_5D, TRAIN_3D = str(BUNDLE / "configs" / "train_2.5d.json"), str(BUNDLE / "configs" / "train_3d.json")


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
    # the lowest val_loss, with val_loss's sign
    best = min(e.value for e in val.Scalars("val_loss"))
    assert hparams.Scalars("hparam/best_val_loss")[0].value == pytest.approx(best) and best > 0
    plugin = hparams.PluginTagToContent("hparams")
    assert plugin, "no hparams summary written"


# --- the network in the GRAPHS tab ------------------------------------------------------------------------------
LAYERS = {"2D": [], "2.5D": [TRAIN_2_5D], "3D": [TRAIN_3D]}
INPUT_SHAPES = {"2D": [1, 1, 32, 32], "2.5D": [1, 5, 32, 32], "3D": [1, 1, 32, 32, 16]}  # one item of a batch


def train(root: Path, dataset: Path, mode: str = "2D", **overrides) -> ConfigWorkflow:
    """A FAST run of train.json with ``mode``'s layer, finished; 3D on 32 x 32 x 16 patches."""
    extra = {"patch_size": [32, 32, 16]} if mode == "3D" else {}
    workflow = ConfigWorkflow(
        config_file=[TRAIN_CONFIG, *LAYERS[mode]],
        meta_file=METADATA,
        logging_file=LOGGING,
        workflow_type="train",
        bundle_root=str(root),
        dataset_dir=str(dataset),
        **{**FAST, **extra, **overrides},
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    return workflow


def train_events(root: Path) -> Path:
    return next((root / "runs" / "SMALabeller").glob("*-trn_cls-exp"))


def graph_input_shapes(log_dir: Path) -> list[list[int]]:
    """The shapes of the traced network's inputs in the event file's graph (``ValueError`` without a graph)."""
    graph = load(log_dir).Graph()
    inputs = [node for node in graph.node if node.op == "IO Node" and node.name.startswith("input/")]
    return [[d.size for d in node.attr["_output_shapes"].list.shape[0].dim] for node in inputs]


@pytest.mark.parametrize("mode", ["2.5D", "3D"])  # 2D: test_tracing_the_graph_leaves_training_as_it_was
def test_the_network_graph_is_written_with_the_runs_input_shape(mode, dataset, tmp_path, one_torch_thread):
    train(tmp_path, dataset, mode)
    assert load(train_events(tmp_path)).Tags()["graph"]
    assert graph_input_shapes(train_events(tmp_path)) == [INPUT_SHAPES[mode]]


def test_tracing_the_graph_leaves_training_as_it_was(dataset, tmp_path, one_torch_thread):
    """A 2D run's graph; traced in eval mode after the first iteration, so BatchNorm statistics and weights are as
    without the trace (the next iteration and validation train and score the same)."""
    with_graph = train(tmp_path / "with", dataset)
    without = train(tmp_path / "without", dataset, **{"tracking#network_graph": False})
    assert graph_input_shapes(train_events(tmp_path / "with")) == [INPUT_SHAPES["2D"]]
    assert not load(train_events(tmp_path / "without")).Tags()["graph"]
    for name in ("with", "without"):
        assert (tmp_path / name / "models" / "model.pt").is_file()
    ours = torch.load(tmp_path / "with" / "models" / "model.pt", weights_only=True)
    theirs = torch.load(tmp_path / "without" / "models" / "model.pt", weights_only=True)
    assert ours.keys() == theirs.keys() and any("running_mean" in key for key in ours)
    for key, tensor in ours.items():
        assert torch.equal(tensor, theirs[key]), key
    assert with_graph.evaluator.state.metrics == without.evaluator.state.metrics


def test_the_trace_puts_back_every_modules_mode_and_leaves_batchnorm_alone(tmp_path):
    network = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.BatchNorm2d(2))
    network[2].eval()  # a frozen BatchNorm in a network that trains
    before = {k: v.clone() for k, v in network.state_dict().items()}
    engine = Engine(lambda engine, batch: None)
    engine.state.output = {"image": torch.rand(4, 1, 8, 8)}
    writer = SummaryWriter(str(tmp_path))
    NetworkGraph(writer, network)(engine)
    writer.close()
    assert [m.training for m in network.modules()] == [True, True, True, False]
    assert all(torch.equal(v, before[k]) for k, v in network.state_dict().items())
    assert graph_input_shapes(tmp_path) == [[1, 1, 8, 8]]


class Untraceable(torch.nn.Module):
    """Trains and predicts like any network, but its forward cannot be traced."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x):
        if torch.jit.is_tracing():
            raise RuntimeError("data-dependent control flow\nsecond line of the error")
        return self.conv(x)


def test_a_network_that_cannot_be_traced_is_one_warning_and_training_goes_on(
    dataset, tmp_path, caplog, capfd, one_torch_thread
):
    logger = logging.getLogger("scripts.tracking.network_graph")
    logger.addHandler(caplog.handler)  # the run's logging config replaces the root logger's handlers
    try:
        workflow = train(tmp_path, dataset, epochs=2, network_def=Untraceable())
    finally:
        logger.removeHandler(caplog.handler)
    assert workflow.trainer.state.epoch == 2 and (tmp_path / "models" / "model.pt").is_file()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == logger.name]
    assert lines == [
        (
            "WARNING",
            "TensorBoard graph not written: Untraceable cannot be traced (RuntimeError: data-dependent control flow)",
        )
    ]
    output = capfd.readouterr()
    printed = output.out + output.err
    assert "No graph saved" not in printed and "Traceback" not in printed
    assert not load(train_events(tmp_path)).Tags()["graph"]


# --- HPARAMS ------------------------------------------------------------------------------------------------------
class RecordingWriter:
    def __init__(self) -> None:
        self.hparams: list[tuple[dict, dict]] = []

    def add_hparams(self, hparams, metrics, **kwargs) -> None:
        self.hparams.append((hparams, metrics))


def test_hparams_best_val_loss_has_the_sign_of_val_loss():
    """The early stopper keeps the lowest val_loss itself (mode "min"), not its negative."""
    evaluator, trainer = Engine(lambda engine, batch: None), Engine(lambda engine, batch: None)
    stopping = EarlyStoppingOnValidation(evaluator, patience=3)
    for epoch, loss in ((1, 1.2), (2, 1.0658), (3, 1.1)):
        evaluator.state.epoch = trainer.state.epoch = epoch
        evaluator.state.metrics = {"val_loss": loss, "val_mean_dice": 0.5}
        stopping(trainer)
    writer = RecordingWriter()
    HParamsLogger(writer, {"lr": 0.001}, evaluator, stopping)(trainer)
    _, metrics = writer.hparams[0]
    assert metrics["hparam/best_val_loss"] == pytest.approx(1.0658) and metrics["hparam/best_epoch"] == 2
    assert metrics["hparam/val_loss"] == pytest.approx(1.1)
