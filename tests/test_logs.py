"""What the log says is best: in training the validation loss (it selects best.pth, the restored weights and early
stopping), over a resumed run too; in an evaluation of a finished model nothing."""

from __future__ import annotations

import logging
import re

import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

from tests.conftest import EVALUATE_CONFIG, LOGGING, METADATA, TRAIN_CONFIG, checkpoint_dir, make_workflow

KEY_LINE = re.compile(r"Key metric: (\w+) best value: (\S+) at epoch: (\d+)")
# MONAI's StatsHandler logs through its own handler, bound to the stdout of the first run in a process (capfd
# misses later runs'); the engines' "Got new best metric" lines come from Ignite's engine loggers
LOGGERS = ("monai.handlers.StatsHandler", "ignite.engine", "scripts")


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def log():
    """The INFO lines of the StatsHandler, the engines and the bundle's modules while the test runs."""
    lines = Lines()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(lines)
        logger.setLevel(logging.INFO)
    yield lines
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(lines)
        logger.setLevel(level)


def key_metric_lines(log: str) -> list[tuple[str, float, int]]:
    return [(m[1], float(m[2]), int(m[3])) for m in KEY_LINE.finditer(log)]


def test_training_logs_the_best_val_loss_and_no_best_train_loss(dataset, tmp_path, log, one_torch_thread):
    workflow = make_workflow(tmp_path, dataset, epochs=2)
    workflow.run()
    workflow.finalize()
    text = log.text()
    assert "Epoch[2] Metrics -- train_loss" in text  # the training loss is still logged every epoch
    assert "Got new best metric of val_loss" in text
    assert "best metric of train_loss" not in text and "Key metric: train_loss" not in text
    lines = key_metric_lines(text)
    assert [name for name, _, _ in lines] == ["val_loss", "val_loss"]  # after each validation
    best = torch.load(checkpoint_dir(tmp_path / "runs") / "best.pth", weights_only=True)
    assert lines[-1][1:] == (best["monitor_value"], best["epoch"])  # the weights restored at the end
    assert f"Restored best weights from epoch {best['epoch']}" in text


def test_a_resumed_run_logs_the_best_of_the_whole_run(dataset, tmp_path, log, one_torch_thread):
    """Epoch 1's val_loss (made 1e-6 in best.pth) beats anything after the resume: epoch 2 is no new best, and the
    key metric line names epoch 1, whose weights are restored at the end."""
    first = make_workflow(tmp_path, dataset, epochs=2)
    first.trainer.add_event_handler(Events.EPOCH_COMPLETED(once=1), lambda engine: engine.terminate())
    first.run()
    first.finalize()
    best_path = checkpoint_dir(tmp_path / "runs") / "best.pth"
    best = torch.load(best_path, weights_only=True)
    torch.save({**best, "monitor_value": 1e-6}, best_path)
    log.lines.clear()

    resumed = make_workflow(tmp_path, dataset, epochs=2, resume=True)
    resumed.run()
    resumed.finalize()
    text = log.text()
    assert "Epoch[2] Metrics -- val_loss" in text
    assert "Got new best metric" not in text
    assert key_metric_lines(text) == [("val_loss", 1e-6, 1)]
    assert "Restored best weights from epoch 1" in text


def test_evaluation_logs_its_metrics_and_no_best(dataset, tmp_path, log, one_torch_thread):
    """An evaluation scores a finished model: no "new best" or "best value" lines (here an untrained network)."""
    workflow = ConfigWorkflow(
        config_file=[TRAIN_CONFIG, EVALUATE_CONFIG],
        meta_file=METADATA,
        logging_file=LOGGING,
        bundle_root=str(tmp_path),
        dataset_dir=str(dataset),
        eval_output_dir=str(tmp_path / "eval"),
        **{"validate#handlers#0#_disabled_": True},  # no weights to load
        spatial_size=32,
        num_workers=0,
        inference_planes=["auto"],
        tta=False,
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    text = log.text()
    assert "Epoch[1] Metrics -- val_loss" in text and (tmp_path / "eval" / "metrics.csv").is_file()
    assert "best metric" not in text and "Key metric" not in text
