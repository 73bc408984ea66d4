"""Save a :class:`~scripts.persistence.training_state.TrainingState` under a fixed or numbered name at an engine event."""

from __future__ import annotations

import logging
import re

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint

from scripts.persistence.durable_disk_saver import DurableDiskSaver

logger = logging.getLogger(__name__)


class CheckpointHandler:
    """One Ignite ``Checkpoint`` with a :class:`DurableDiskSaver`, attached to one event.

    ``filename`` may use ``{global_step}`` (the trainer's epoch), e.g. ``periodic_{global_step:04d}.pth``;
    the newest ``n_saved`` are kept. With ``score_metric``, only a lower value of that metric of the attached
    engine is saved. It sits in the trainer's handler list: ``attach(trainer)`` gives ``state`` its trainer and
    saves at the end of the trainer's epochs, or of ``engine``'s when given (the best checkpoint: the evaluator, whose
    metrics it scores). Files this handler wrote in an earlier, resumed part of the run are adopted on attach, so the
    best-so-far and the retention count carry over.
    """

    def __init__(
        self,
        state,
        dirname: str,
        filename: str,
        n_saved: int | None = 1,
        every: int = 1,
        score_metric: str | None = None,
        save_on_rank: int = 0,
        engine: Engine | None = None,
    ) -> None:
        self.state, self.every, self.score_metric, self.engine = state, int(every), score_metric, engine
        self.saver = DurableDiskSaver(dirname, save_on_rank=save_on_rank)
        self.filename = filename
        score_function = None
        if score_metric is not None:
            score_function = lambda engine: -float(engine.state.metrics[score_metric])  # noqa: E731
        self.checkpoint = Checkpoint(
            {"training_state": state},
            self.saver,
            score_function=score_function,
            score_name=score_metric,
            n_saved=n_saved,
            filename_pattern=filename,
            global_step_transform=lambda *_: int(self.state.trainer.state.epoch),
            save_on_rank=save_on_rank,
        )

    def attach(self, trainer: Engine) -> None:
        self.state.attach(trainer)
        self._adopt_existing()
        (self.engine or trainer).add_event_handler(Events.EPOCH_COMPLETED(every=self.every), self.checkpoint)

    def _adopt_existing(self) -> None:
        saved = []
        for path in self.saver.dirname.glob(re.sub(r"\{[^}]*\}", "*", self.filename)):
            try:
                checkpoint = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as error:  # a broken file is left alone and not counted
                logger.error("%s: unreadable checkpoint (%s); it is left in place", path, type(error).__name__)
                continue
            priority = -checkpoint["monitor_value"] if self.score_metric else checkpoint["epoch"]
            saved.append((priority, path.name))
        if saved:
            self.checkpoint.load_state_dict({"_saved": sorted(saved)})
