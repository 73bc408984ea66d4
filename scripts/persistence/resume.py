"""Continue a run from its checkpoints: same epoch, schedule position, early-stopping state and best-so-far."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

import ignite.distributed as idist
import torch

from scripts.common.flags import as_bool

logger = logging.getLogger(__name__)

STAMP_FORMAT = "%Y-%m-%d_%H.%M.%S"


class ResumeError(RuntimeError):
    """No usable checkpoint to resume from; the message names the files tried."""


def _run_folders(output_dir: str, tb_prefix: str) -> list[Path]:
    root = Path(output_dir) / tb_prefix
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "checkpoints").is_dir())


def run_stamp(output_dir: str, tb_prefix: str, resume=False, resume_from: str = "") -> str:
    """The timestamp naming this run's folders: the resumed run's own, or now; rank 0's under DDP."""
    stamp = _local_run_stamp(output_dir, tb_prefix, resume, resume_from) if idist.get_rank() == 0 else ""
    return idist.broadcast(stamp, src=0) if idist.get_world_size() > 1 else stamp


def _new_run_stamp(output_dir: str, tb_prefix: str) -> str:
    """Now, claimed by creating its folder (``-2``, ``-3``... when another run started in the same second): two
    runs never share a folder."""
    root = Path(output_dir) / tb_prefix
    root.mkdir(parents=True, exist_ok=True)
    base = datetime.datetime.now().strftime(STAMP_FORMAT)
    for n in range(1, 1000):
        stamp = base if n == 1 else f"{base}-{n}"
        try:
            (root / stamp).mkdir()
            return stamp
        except FileExistsError:
            continue
    raise SystemExit(f"{root}: 999 runs started within one second; pass another --tb_prefix")


def _local_run_stamp(output_dir: str, tb_prefix: str, resume, resume_from: str) -> str:
    if resume_from:
        checkpoint = Path(resume_from)
        if checkpoint.parent.name == "checkpoints":
            return checkpoint.parent.parent.name
    elif as_bool(resume, "resume"):
        runs = _run_folders(output_dir, tb_prefix)
        if runs:
            return runs[-1].name
        logger.warning(
            "--resume true, but %s holds no run with checkpoints: starting a new run", Path(output_dir) / tb_prefix
        )
    return _new_run_stamp(output_dir, tb_prefix)


def _candidates(ckpt_dir: Path) -> list[Path]:
    """``last.pth``, the periodic checkpoints newest first, then ``best.pth``: on equal progress, the order preferred."""
    return [ckpt_dir / "last.pth", *sorted(ckpt_dir.glob("periodic_*.pth"), reverse=True), ckpt_dir / "best.pth"]


def load_checkpoint(path: Path) -> dict:
    """``torch.load(weights_only=True)``; a missing, truncated or foreign file raises ``ResumeError`` naming it."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise ResumeError(f"{path}: unreadable checkpoint ({type(error).__name__}: {str(error)[:120]})") from error
    if not isinstance(state, dict) or "model_state" not in state:
        raise ResumeError(f"{path}: not a checkpoint of this bundle (no model_state)")
    return state


class Resume:
    """Load the newest usable checkpoint of the resumed run into a :class:`~scripts.persistence.training_state.TrainingState`.

    With ``resume_from`` that file is used; with ``resume`` the newest readable one of the run's ``last.pth``,
    ``periodic_*.pth`` and ``best.pth`` (each unreadable one named in an error line).
    """

    def __init__(self, ckpt_dir: str, resume=False, resume_from: str = "") -> None:
        self.ckpt_dir = Path(ckpt_dir)
        self.resume, self.resume_from = as_bool(resume, "resume"), resume_from
        self.finished = False  # the resumed run had already ended: nothing is left to train

    def _mark_finished(self, state, checkpoint: dict, path: Path) -> None:
        """A scheduler retrying a job that completed resumes a finished run: that is not an error."""
        max_epochs = state.trainer.state.max_epochs
        stopper = getattr(state.early_stopping, "stopper", None)
        counter = (checkpoint.get("early_stopping_state") or {}).get("counter", 0)
        if checkpoint["epoch"] >= max_epochs:
            why = f"all {max_epochs} epochs done"
        elif stopper is not None and counter >= stopper.patience:
            why = f"stopped early at epoch {checkpoint['epoch']}"
        else:
            return
        self.finished = True
        logger.info("%s: the run has already finished (%s); nothing to train", path, why)

    def _choose(self) -> tuple[Path, dict] | None:
        """The checkpoint to resume from, read, or ``None`` when there is nothing to resume."""
        if self.resume_from:
            candidates = [Path(self.resume_from)]
        elif self.resume:
            candidates = [p for p in _candidates(self.ckpt_dir) if p.is_file()]
            if not candidates:  # killed before its first checkpoint
                logger.warning("--resume true, but %s holds no checkpoint yet: starting at epoch 1", self.ckpt_dir)
                return None
        else:
            return None
        errors, readable = [], []
        for path in candidates:
            try:
                readable.append((path, load_checkpoint(path)))
            except ResumeError as error:
                logger.error("%s; not used", error)
                errors.append(str(error))
        if not readable:
            raise ResumeError(
                "no usable checkpoint to resume from: " + "; ".join(errors or [f"{self.ckpt_dir} is empty"])
            )
        # the newest readable one (most iterations), last.pth before a periodic one before best.pth on a tie
        order = [path for path, _ in readable]
        return max(readable, key=lambda pc: (pc[1]["global_step"], -order.index(pc[0])))

    def load_into(self, state, trainer) -> dict | None:
        """Load the chosen checkpoint into ``state``, the resumable state of ``trainer``; the checkpoint read, or
        ``None`` when there is nothing to resume. Passing ``trainer`` builds it, with its handlers, first."""
        state.attach(trainer)
        if idist.get_world_size() > 1:
            # rank 0 alone reads the files and sends what it chose: the other ranks need no shared storage, and every
            # rank resumes from the same checkpoint
            message = [None]
            if idist.get_rank() == 0:
                try:
                    message = [("chosen", self._choose())]
                except ResumeError as error:
                    message = [("error", str(error))]
            torch.distributed.broadcast_object_list(message, src=0)
            kind, chosen = message[0]
            if kind == "error":
                raise ResumeError(chosen)
        else:
            chosen = self._choose()
        if chosen is None:
            return None
        path, checkpoint = chosen
        try:
            state.load_state_dict(checkpoint)
        except (ValueError, RuntimeError, KeyError) as error:  # a checkpoint of another run or network
            raise SystemExit(f"cannot resume from {path}: {error}") from error
        logger.info("Resumed from %s: epoch %d, iteration %d", path, checkpoint["epoch"], checkpoint["global_step"])
        self._mark_finished(state, checkpoint, path)
        return checkpoint
