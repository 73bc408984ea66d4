"""Save a :class:`~scripts.training_state.TrainingState` under a fixed or numbered name at an engine event."""

from __future__ import annotations

from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint

from scripts.durable_disk_saver import DurableDiskSaver


class CheckpointHandler:
    """One Ignite ``Checkpoint`` with a :class:`DurableDiskSaver`, attached to one event.

    ``filename`` may use ``{global_step}`` (the trainer's epoch), e.g. ``periodic_{global_step:04d}.pth``.
    With ``score_metric``, only a better (lower) value of that metric of the attached engine is saved.
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
    ) -> None:
        self.state = state
        self.every = int(every)
        score_function = None
        if score_metric is not None:
            score_function = lambda engine: -float(engine.state.metrics[score_metric])  # noqa: E731
        self.checkpoint = Checkpoint(
            {"training_state": state},
            DurableDiskSaver(dirname, save_on_rank=save_on_rank),
            score_function=score_function,
            score_name=score_metric,
            n_saved=n_saved,
            filename_pattern=filename,
            global_step_transform=lambda *_: int(state.trainer.state.epoch),
            save_on_rank=save_on_rank,
        )

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.every), self.checkpoint)
