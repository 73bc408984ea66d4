"""The one launch path: every tool (app, tune, cross_validate, the benchmarks) runs the bundle's configs from here,
in this process (:func:`build_workflow`, :func:`run_training`) or as ``python -m monai.bundle run`` in a subprocess
(:func:`bundle_command`, :func:`run_bundle`)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from scripts.common.paths import BUNDLE_ROOT, LOGGING, METADATA, MODE_FILES, TRAIN_CONFIG


def ensure_importable(bundle_root: Path = BUNDLE_ROOT) -> None:
    """Make ``import scripts`` find this bundle from any working directory (Ray runs trials elsewhere)."""
    root = str(bundle_root)
    if root not in sys.path:
        sys.path.insert(0, root)


def config_files(unet_dimensions: str | None = None) -> list[str]:
    """configs/train.json, with the layered config file of ``unet_dimensions`` (``scripts.common.paths.MODE_FILES``)
    on top for modes other than 2D; an unknown mode gets train.json alone and the bundle's config check refuses it."""
    files = [str(TRAIN_CONFIG)]
    layered = MODE_FILES.get(unet_dimensions)
    if layered and Path(layered).name != TRAIN_CONFIG.name:
        path = BUNDLE_ROOT / layered
        if not path.is_file():
            raise SystemExit(
                f"configuration error: unet_dimensions={unet_dimensions!r}: {layered} is not in this bundle"
            )
        files.append(str(path))
    return files


def config_argument(files: list[str]) -> str:
    """``--config_file``'s value for ``files``: the file itself, or MONAI's list syntax for layered files."""
    return files[0] if len(files) == 1 else "[" + ",".join(f"'{f}'" for f in files) + "]"


def bundle_command(files: list[str], overrides: dict[str, Any] | list[str] = ()) -> list[str]:
    """``python -m monai.bundle run`` of ``files`` (absolute, or relative to the bundle root) with the bundle's
    metadata and logging files and ``overrides`` (config keys -> values, or ready ``--key value`` arguments)."""
    args = (
        overrides
        if isinstance(overrides, (list, tuple))
        else [a for k, v in overrides.items() for a in (f"--{k}", str(v))]
    )
    return [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        config_argument([str(f) for f in files]),
        "--meta_file",
        str(METADATA),
        "--logging_file",
        str(LOGGING),
        *args,
    ]


def run_bundle(files: list[str], overrides: dict[str, Any] | list[str], log: Path) -> float:
    """:func:`bundle_command` in a subprocess from the bundle root, its output in ``log``; the seconds it took. A
    failure ends the calling tool with the log's tail."""
    cmd = bundle_command(files, overrides)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(BUNDLE_ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.monotonic()
    with open(log, "w") as out:
        result = subprocess.run(cmd, cwd=BUNDLE_ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd[:6])} ... failed with status {result.returncode}; see {log}\n"
            f"{Path(log).read_text()[-2000:]}"
        )
    return time.monotonic() - started


def build_workflow(
    overrides: dict[str, Any],
    logging_file: str | bool | None = None,
    files: list[str] | None = None,
    workflow_type: str = "train",
):
    """A ``ConfigWorkflow`` of ``files`` (default: configs/train.json and the layered file of ``unet_dimensions``, see
    :func:`config_files`) with ``overrides`` (config keys -> values), not yet initialized.

    ``bundle_root`` defaults to this bundle's folder, so demo data, ``runs/`` and ``models/`` land where
    ``python -m monai.bundle run`` from the bundle root puts them. An override that names no setting ends the process
    with status 2 and one line (``scripts.config.setting_names``).
    """
    ensure_importable()
    from monai.bundle import ConfigWorkflow

    from scripts.config.setting_names import check_names

    settings = {"bundle_root": str(BUNDLE_ROOT), **overrides}
    files = files or config_files(settings.get("unet_dimensions"))
    check_names(settings, files)
    return ConfigWorkflow(
        config_file=files,
        meta_file=str(METADATA),
        logging_file=str(LOGGING) if logging_file is None else logging_file,
        workflow_type=workflow_type,
        **settings,
    )


def final_metrics(workflow) -> dict[str, float]:
    """The last epoch's training loss, validation loss and mean Dice (NaN where not computed)."""
    train = workflow.trainer.state.metrics
    val = workflow.evaluator.state.metrics if workflow.evaluator.state is not None else {}
    return {
        "epoch": int(workflow.trainer.state.epoch),
        "training_loss": float(train.get("train_loss", math.nan)),
        "validation_loss": float(val.get("val_loss", math.nan)),
        "mean_dice": float(val.get("val_mean_dice", math.nan)),
    }


def run_training(
    overrides: dict[str, Any], handlers: Iterable[Callable[[Any], Any]] = (), logging_file: str | bool | None = None
):
    """Initialize, run and finalize the training workflow; return it.

    ``handlers`` are factories called with the initialized workflow; each returns an object whose
    ``attach(trainer)`` is called, after the bundle's own handlers and checkpoints, so it sees every epoch's
    validation metrics and the checkpoints written for that epoch. A handler's ``finish()``, if it has one, is
    called after ``finalize``.
    """
    workflow = build_workflow(overrides, logging_file)
    workflow.initialize()
    attached = [factory(workflow) for factory in handlers]
    for handler in attached:
        handler.attach(workflow.trainer)
    workflow.run()
    workflow.finalize()
    for handler in attached:
        if callable(getattr(handler, "finish", None)):
            handler.finish()
    return workflow
