"""At the end of training, put the best weights back into the network and write ``models/model.pt`` with the
settings it expects beside it (``models/model.json``)."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events

from scripts.common.durable_write import save_durably
from scripts.networks import model_settings as settings_file
from scripts.networks.placement import unwrap

logger = logging.getLogger(__name__)


class ExportBestModel:
    """On ``COMPLETED`` (normal end or early stop): load ``best.pth`` into the network (on every rank) and
    save its bare state dict (model-zoo convention) to ``model_path`` and ``model_settings`` beside it (rank 0), with
    ``trained_on``, the training images' folder, that keeps a later run on other data from replacing it.
    Without a best checkpoint the last weights are kept."""

    def __init__(
        self,
        network: torch.nn.Module,
        best_checkpoint: str,
        model_path: str,
        model_settings: dict,
        trained_on: str | None = None,
    ) -> None:
        self.network = network
        self.best_checkpoint = Path(best_checkpoint)
        self.model_path = Path(model_path)
        self.model_settings = dict(model_settings)
        self.trained_on = None if trained_on is None else str(Path(trained_on).resolve())

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if idist.get_world_size() > 1:  # rank 0 may still be writing the last best.pth
            idist.barrier()
        if self.best_checkpoint.is_file():
            best = torch.load(self.best_checkpoint, map_location="cpu", weights_only=True)
            unwrap(self.network).load_state_dict(best["model_state"])
            logger.info(
                "Restored best weights from epoch %d (val_loss=%.4f, %s) into %s",
                best["epoch"],
                best["monitor_value"],
                self.best_checkpoint,
                self.model_path,
            )
        elif getattr(engine.state, "non_finite", None) is not None:
            logger.error("No best checkpoint and the weights are non-finite: %s is not written", self.model_path)
            return
        else:
            logger.info("No validation ran, so %s holds the weights of the last epoch", self.model_path)
        if idist.get_rank() == 0:
            self._write_pair(unwrap(self.network).state_dict())

    def _write_pair(self, state_dict: dict) -> None:
        """``model.json``, then ``model.pt``; if the weights cannot be written (a full disk), the former
        ``model.json`` is put back, so the former model and its settings still belong together."""
        sidecar = settings_file.sidecar(self.model_path)
        former = sidecar.read_bytes() if sidecar.is_file() else None
        settings_file.write(self.model_settings, self.model_path, self.trained_on)
        try:
            save_durably(state_dict, self.model_path)
        except OSError:
            with contextlib.suppress(OSError):  # the weights' error is the one to report
                if former is None:
                    sidecar.unlink(missing_ok=True)
                else:
                    save_durably(former, sidecar, save=lambda data, f: f.write(data))
            raise
