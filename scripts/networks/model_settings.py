"""What a trained network expects of its input, kept with its weights so that inference and evaluation need not be told.

Training records train.json's ``model_settings`` (mode, network arguments, spatial size, slice axis, intensity
normalisation, context slices, patch size, label threshold, label classes) in ``model.json`` beside ``model.pt`` and inside every
checkpoint; ``configs/inference.json`` and ``configs/evaluate.json`` take their settings from the file ``ckpt_path``
names and refuse an override that contradicts it. nnU-Net keeps its ``plans.json`` beside the weights for this reason.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from scripts.common.durable_write import write_text_durably
from scripts.common.flags import as_bool
from scripts.common.paths import TRAIN_CONFIG
from scripts.data.label_classes import BINARY_CLASSES

logger = logging.getLogger(__name__)

# about the labels a model is scored against, not about its input: an evaluation may set it for other data
NOT_ENFORCED = ("label_threshold",)
# model.json's record of the data the model was trained on: not a setting (read() leaves it out)
TRAINED_ON = "trained_on"
# settings recorded since, and what a model recorded before them was trained with: one foreground class of value 1,
# flips along every axis
RECORDED_SINCE = {"label_classes": dict(BINARY_CLASSES), "mirror_axes": ["LR", "AP", "SI"]}


def sidecar(weights_path) -> Path:
    """``model.json`` for ``model.pt``: the settings file that travels beside a weights file."""
    return Path(weights_path).with_suffix(".json")


def write(settings: dict, weights_path, trained_on: str | None = None) -> None:
    """Write ``settings`` beside ``weights_path`` durably (temp file, fsync, rename), with ``trained_on`` (the data's
    folder) under :data:`TRAINED_ON`, which :func:`refuse_replacing` reads."""
    record = {**settings, **({TRAINED_ON: str(trained_on)} if trained_on is not None else {})}
    write_text_durably(json.dumps(record, indent=4, sort_keys=True) + "\n", sidecar(weights_path))


def refuse_replacing(model_path, training_images, replace_model=False, resuming=False) -> None:
    """End the process with one line, before any work, if training would overwrite ``model_path`` while it holds a
    model trained on other data than ``training_images`` (the shipped brain model, another task's model): the
    model-zoo layout writes ``models/model.pt``, and a user pointing train.json at their data must not lose the
    shipped model without a word. A rerun on the same data replaces its own model as before; a resumed run goes on
    writing its own (resuming with other data is refused by the resume check unless ``--resume_with_changes``)."""
    path = Path(model_path)
    if not path.is_file() or resuming or as_bool(replace_model, "replace_model"):
        return
    recorded = None
    if sidecar(path).is_file():
        try:
            recorded = json.loads(sidecar(path).read_text()).get(TRAINED_ON)
        except (OSError, ValueError, AttributeError):
            recorded = None
    here = str(Path(training_images).resolve())
    if recorded == here:
        return
    raise SystemExit(
        f"{path}: holds a model trained on {recorded or 'data not recorded'}, not on {here}; pass --model_path with "
        f"another file (e.g. --model_path runs/my_task/model.pt) to keep it, or --replace_model true to overwrite it"
    )


def default_settings() -> dict:
    """train.json's own ``model_settings``: what a model trained with the defaults expects."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(TRAIN_CONFIG))
    parser["label_classes"] = dict(BINARY_CLASSES)  # train.json finds them in the data; weights alone are binary
    return parser.get_parsed_content("model_settings")


def _recorded_settings(path: Path) -> dict | None:
    """The settings recorded with ``path``: inside a training checkpoint (``model_settings``), else in the
    ``model.json`` beside it; ``None`` when there are none."""
    if path.suffix == ".pth" and path.is_file():
        try:
            settings = torch.load(path, map_location="cpu", weights_only=True).get("model_settings")
        except Exception:  # an unreadable checkpoint: loading its weights names the file and the fix
            settings = None
        if settings:
            return settings
    if sidecar(path).is_file():
        try:
            return {k: v for k, v in json.loads(sidecar(path).read_text()).items() if k != TRAINED_ON}
        except (OSError, ValueError) as error:
            raise SystemExit(
                f"{sidecar(path)}: not readable JSON ({error}); restore it from the model's release "
                "or delete it to assume the default settings"
            ) from None
    return None


def read(ckpt_path) -> dict:
    """The settings ``ckpt_path`` was trained with: from a training checkpoint (``best.pth``/``last.pth``) its
    ``model_settings``, from ``model.pt`` the ``model.json`` beside it; train.json's defaults (with one warning line)
    for weights saved without them, or when the file does not exist yet (loading the weights then says so)."""
    path = Path(ckpt_path)
    settings = _recorded_settings(path)
    if settings is not None:
        return {**RECORDED_SINCE, **settings}
    if path.is_file():
        logger.warning(
            "%s: no settings recorded with these weights (%s); assuming configs/train.json's defaults",
            path,
            sidecar(path).name,
        )
    return default_settings()


def refuse_contradictions(trained: dict, current: dict, ckpt_path) -> None:
    """End the process with one line per setting that ``current`` (this run's, overrides included) sets differently
    from ``trained``: the network would see inputs unlike those it learnt from, and its masks would be wrong.
    Weights that carry no settings (saved before they were recorded) take what the command line says."""
    if _recorded_settings(Path(ckpt_path)) is None:
        return
    found = [
        f"--{key} {current[key]!r} contradicts the model, trained with {key}={trained[key]!r}: drop the override"
        for key in trained
        if key in current and key not in NOT_ENFORCED and normalised(current[key]) != normalised(trained[key])
    ]
    if found:
        raise SystemExit(f"configuration error ({ckpt_path}): " + "\n  ".join(found))


def normalised(value):
    """Tuples and lists compare equal, as they do once written to JSON."""
    return json.loads(json.dumps(value))
