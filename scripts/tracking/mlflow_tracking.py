"""Fit MONAI's ``--tracking mlflow`` handlers to this bundle's trainer."""

from __future__ import annotations

from pathlib import Path

from ignite.engine import Engine, Events


def mlflow_handlers(engine: Engine) -> list:
    """The ``MLFlowHandler`` objects whose methods are attached to ``engine``."""
    found = []
    for handlers in engine._event_handlers.values():  # Ignite has no public way to list handlers
        for handler, *_ in handlers:
            owner = getattr(handler, "__self__", None)
            if type(owner).__name__ == "MLFlowHandler" and owner not in found:
                found.append(owner)
    return found


class MLflowTrackingAdapter:
    """``--tracking mlflow`` appends MONAI ``MLFlowHandler``s set up for a decollated trainer output, logging only
    ``max_epochs``/``epoch_length`` as parameters and only the executed config as an artifact. When the trainer
    starts, this reads the loss from this trainer's (undecollated) output, logs the run's settings as parameters,
    and adds the best model to the artifacts. Without ``--tracking`` there are no such handlers: it does nothing."""

    def __init__(self, params: dict, model_path: str) -> None:
        self.params, self.model_path = params, str(Path(model_path))

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        for handler in mlflow_handlers(engine):
            handler.output_transform = lambda output: output["loss"] if isinstance(output, dict) else output[0]["loss"]
            handler.experiment_param = {**(handler.experiment_param or {}), **self.params}
            if handler.artifacts and self.model_path not in handler.artifacts:
                handler.artifacts = (*handler.artifacts, self.model_path)
