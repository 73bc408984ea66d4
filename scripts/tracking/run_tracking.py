"""What a training run logs, as one component: the console, TensorBoard and MLflow, for training and its validations."""

from __future__ import annotations

import ignite.distributed as idist
from ignite.engine import Engine
from ignite.handlers import ProgressBar
from monai.handlers import StatsHandler, TensorBoardStatsHandler

from scripts.tracking.histogram_logger import HistogramLogger
from scripts.tracking.hparams_logger import HParamsLogger
from scripts.tracking.mlflow_tracking import MLflowTrackingAdapter
from scripts.tracking.network_graph import NetworkGraph
from scripts.tracking.training_scalars import TrainingScalarsLogger
from scripts.tracking.validation_panels import ValidationPanels


def _loss(output: dict):
    return output["loss"]


class RunTracking:
    """Attached to the trainer, it attaches one handler per job, each configured from the run's settings:

    * training: ``train_loss`` per epoch in the log, per iteration in TensorBoard (``train_loss_batch``), the learning
      rate, gradient norm and step time (:class:`TrainingScalarsLogger`), the network's graph once
      (:class:`NetworkGraph`, unless ``network_graph`` is false), weight histograms every ``histogram_every`` epochs,
      the settings and best validation score as hyper-parameters (:class:`HParamsLogger`), MLflow's parameters and
      artifacts (:class:`MLflowTrackingAdapter`, only with ``--tracking mlflow``), and a progress bar on rank 0;
    * every validation: its metrics in the log and in TensorBoard, and image panels (:class:`ValidationPanels`).

    The evaluator's handlers are attached after its own (``validate#handlers``), so the per-class Dice they add is
    logged too. Writers are rank 0's (``scripts.tracking.summary_writer``); other ranks log nothing.
    """

    def __init__(
        self,
        train_writer,
        val_writer,
        network,
        optimizer,
        evaluator: Engine,
        hparams: dict,
        model_path: str,
        early_stopping=None,
        histogram_every: int = 1,
        network_graph: bool = True,
    ) -> None:
        self.train_handlers = [
            StatsHandler(tag_name="train_loss", iteration_log=False, output_transform=_loss),
            TensorBoardStatsHandler(summary_writer=train_writer, tag_name="train_loss_batch", output_transform=_loss),
            TrainingScalarsLogger(train_writer, optimizer, network),
            *([NetworkGraph(train_writer, network)] if network_graph else []),
            HistogramLogger(train_writer, network, every=histogram_every),
            HParamsLogger(train_writer, hparams, evaluator, early_stopping),
            MLflowTrackingAdapter(params=hparams, model_path=model_path),
            ProgressBar(persist=True, disable=idist.get_rank() > 0),
        ]
        self.evaluator = evaluator
        self.val_handlers = [
            StatsHandler(iteration_log=False),
            TensorBoardStatsHandler(summary_writer=val_writer, iteration_log=False),
            ValidationPanels(val_writer),
        ]

    def attach(self, trainer: Engine) -> None:
        for handler in self.train_handlers:
            handler.attach(trainer)
        for handler in self.val_handlers:
            handler.attach(self.evaluator)
