"""Load the weights to predict or score with when the engine starts, not when the config is parsed."""

from __future__ import annotations

import torch
from ignite.engine import Engine, Events

from scripts.networks.weights import CheckpointError, load_weights


class WeightsLoader:
    """Load ``ckpt_path`` (``models/model.pt`` or a training checkpoint, ``scripts.networks.weights.load_weights``) into
    ``network`` at the engine's start: the place of the model zoo's ``CheckpointLoader`` (the first handler), so
    parsing or checking the config never needs the file. A missing, unreadable or unfitting file ends the run with one
    line before any scan is predicted (after the scan check, which reads them: ``scripts/data/inference_cases.py``)."""

    def __init__(self, network: torch.nn.Module, ckpt_path: str) -> None:
        self.network, self.ckpt_path = network, ckpt_path

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        try:
            load_weights(self.network, self.ckpt_path)
        except CheckpointError as error:
            raise SystemExit(f"input error: {error}") from None
