"""Everything a checkpoint holds, as plain tensors, numbers and dicts."""

from __future__ import annotations

import math
import os

import torch
from ignite.engine import Engine

from scripts.common.flags import as_bool
from scripts.networks.model_settings import normalised
from scripts.networks.placement import unwrap

# what the network learns from besides model_settings: a resumed run must see the same, unless resume_with_changes
TRAINING_INPUTS = ("training_images", "training_labels", "loss_function")


def _changed_inputs(saved: dict, current: dict) -> list[str]:
    changed = []
    for key in TRAINING_INPUTS:
        if key not in saved or key not in current:
            continue
        old, new = saved[key], current[key]
        if key.startswith("training_"):
            old, new = os.path.realpath(str(old)), os.path.realpath(str(new))
        if old != new:
            changed.append(key)
    return changed


def _difference(keys: list[str], saved: dict, current: dict) -> str:
    return (
        "the checkpoint was trained with "
        + ", ".join(f"{k}={saved[k]!r}" for k in keys)
        + ", this run has "
        + ", ".join(f"{k}={current[k]!r}" for k in keys)
    )


class TrainingState:
    """The resumable state of a run, saved through Ignite's ``Checkpoint`` as one flat dict so that
    ``torch.load(path, weights_only=True)`` reads it back (no pickled classes).

    ``monitor_value`` is the validation loss of the saved epoch (``nan`` before the first validation);
    ``model_settings`` what the network expects of its input (``scripts.networks.model_settings``). The trainer is
    given by :meth:`attach` (the checkpoint handlers in the trainer's own handler list call it), so the config
    needs no reference from the trainer's handlers back to the trainer.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        lr_scheduler,
        evaluator: Engine | None = None,
        early_stopping=None,
        config: dict | None = None,
        monitor: str = "val_loss",
        model_settings: dict | None = None,
        trainer: Engine | None = None,
    ) -> None:
        self.trainer, self.network, self.optimizer, self.lr_scheduler = trainer, network, optimizer, lr_scheduler
        self.evaluator, self.early_stopping, self.config, self.monitor = evaluator, early_stopping, config, monitor
        self.model_settings = model_settings

    def attach(self, trainer: Engine) -> None:
        """The engine whose epoch, iteration and AMP scaler are saved and restored."""
        self.trainer = trainer

    def monitor_value(self) -> float:
        metrics = self.evaluator.state.metrics if self.evaluator is not None else {}
        return float(metrics.get(self.monitor, math.nan))

    def state_dict(self) -> dict:
        scaler = getattr(self.trainer, "scaler", None)
        return {
            "epoch": int(self.trainer.state.epoch),
            "global_step": int(self.trainer.state.iteration),
            "monitor_value": self.monitor_value(),
            "model_state": unwrap(self.network).state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": self.lr_scheduler.state_dict(),
            "scaler_state": scaler.state_dict() if scaler is not None else {},
            "early_stopping_state": dict(self.early_stopping.state_dict()) if self.early_stopping is not None else {},
            "config": dict(self.config or {}),
            "model_settings": dict(self.model_settings or {}),
        }

    def load_state_dict(self, state: dict) -> None:
        saved_settings, settings = state.get("model_settings") or {}, normalised(self.model_settings or {})
        changed = sorted(k for k in saved_settings.keys() & settings.keys() if saved_settings[k] != settings[k])
        if changed:  # weights trained for other inputs would go on learning from these
            raise ValueError(
                _difference(changed, saved_settings, settings)
                + ": resume with the same settings, or start a new run without --resume"
            )
        config = self.config or {}
        changed = _changed_inputs(state.get("config") or {}, config)
        if changed and not as_bool(config.get("resume_with_changes", False), "resume_with_changes"):
            raise ValueError(
                _difference(changed, state["config"], config)
                + ": resume with the same, or pass --resume_with_changes true to go on with these"
            )
        planned, saved = getattr(self.lr_scheduler, "total_steps", None), state["scheduler_state"].get("total_steps")
        if planned is not None and saved is not None and planned != saved:
            raise ValueError(
                f"the checkpoint's learning-rate schedule has {saved} steps (epochs={state['config'].get('epochs')}), "
                f"this run's has {planned}: resume with the same --epochs and --batch_size"
            )
        unwrap(self.network).load_state_dict(state["model_state"])
        self.optimizer.load_state_dict(state["optimizer_state"])
        self.lr_scheduler.load_state_dict(state["scheduler_state"])
        scaler = getattr(self.trainer, "scaler", None)
        if scaler is not None and state["scaler_state"]:
            scaler.load_state_dict(state["scaler_state"])
        if self.early_stopping is not None and state["early_stopping_state"]:
            self.early_stopping.load_state_dict(state["early_stopping_state"])
        self.trainer.state.epoch = state["epoch"]
        self.trainer.state.iteration = state["global_step"]
