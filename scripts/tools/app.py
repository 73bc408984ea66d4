"""The original SMALabeller app's interface, as a thin wrapper over the bundle's training workflow.

Command line (the original flags; the last positional argument is the comment that names the TensorBoard runs)::

    python -m scripts.tools.app --unet_dimensions 2D --num_workers 8 --batch_size 2 --epochs 100 \\
        --training_images DIR --training_labels DIR --tb_prefix SMALabeller --val_set_size 0.2 cconelea

Any other ``--key value`` is passed on as a bundle override (``--lr 3e-4 --spatial_size 64``), read as
``python -m monai.bundle run`` reads it. From Python::

    from scripts.tools.app import SMALabellerApp
    SMALabellerApp(args={"epochs": 10, "dataset_dir": "/data/Task01"}).do2dTraining(
        {"lr": 1e-4, "max_lr": 1e-3, "loss_function": "dice", "augmentations": True, "dropout_rate": 0.2})

Both translate to overrides of configs/train.json and run the same workflow as ``monai.bundle run``
(``scripts.tools.launch.run_training``); ``ray_tune=True`` also reports every epoch to Ray Tune.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from scripts.common.tool_arguments import ToolArgumentParser
from scripts.config.cli_overrides import split_overrides
from scripts.config.config_check import problems_in
from scripts.tools.launch import run_training

logger = logging.getLogger(__name__)

# the hyper-parameters do2dTraining takes in its ``config`` (the Ray Tune search space of the original app)
CONFIG_KEYS = ("lr", "max_lr", "loss_function", "augmentations", "dropout_rate")


def build_parser() -> argparse.ArgumentParser:
    parser = ToolArgumentParser(
        prog="python -m scripts.tools.app",
        description="Train the slice-wise U-Net with the original SMALabeller app's flags. Flags left out keep the "
        "bundle's defaults (configs/train.json); any other --key value is passed on as a bundle override.",
    )
    parser.add_argument(
        "--unet_dimensions", help="2D (default); other modes the bundle implements use their layered config file"
    )
    parser.add_argument("--num_workers", type=int, help="data-loading worker processes")
    parser.add_argument("--batch_size", type=int, help="volumes per batch")
    parser.add_argument("--epochs", type=int, help="training epochs")
    parser.add_argument("--training_images", help="folder of images (<case>_0000.nii.gz)")
    parser.add_argument("--training_labels", help="folder of labels (<case>.nii.gz)")
    parser.add_argument("--dataset_dir", help="folder with imagesTr/ and labelsTr/ (instead of the two folders)")
    parser.add_argument("--tb_prefix", help="sub-folder of output_dir for the TensorBoard runs and checkpoints")
    parser.add_argument("--val_set_size", type=float, help="share of volumes held out for validation")
    parser.add_argument("comment", nargs="?", help="suffix of the TensorBoard run folders")
    return parser


def unet_dimensions_problem(value) -> str | None:
    """The bundle config check's line for an unknown ``unet_dimensions`` (``scripts/config/config_check.py``), or ``None``;
    checked before any work starts."""
    if value is None:
        return None
    lines = [line for line in problems_in({"unet_dimensions": value}) if line.startswith("unet_dimensions=")]
    return "configuration error: " + lines[0] if lines else None


def _trial_dir() -> str:
    from ray import tune

    return tune.get_context().get_trial_dir()


class SMALabellerApp:
    """``args``: the app's settings (the CLI flags above as keys, ``comment`` included) and any other bundle keys;
    values ``None`` are left out. ``do2dTraining(config)`` adds the hyper-parameters and trains."""

    def __init__(self, args: dict[str, Any] | argparse.Namespace | None = None) -> None:
        args = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
        self.args = {key: value for key, value in args.items() if value is not None}
        if problem := unet_dimensions_problem(self.args.get("unet_dimensions")):
            raise SystemExit(problem)

    @classmethod
    def from_cli(cls, argv: list[str] | None = None) -> "SMALabellerApp":
        parser = build_parser()
        rest, overrides = split_overrides(sys.argv[1:] if argv is None else argv, set(parser._option_string_actions))
        return cls({**overrides, **vars(parser.parse_args(rest))})

    def overrides(self, config: dict[str, Any] | None = None, ray_tune: bool = False) -> dict[str, Any]:
        """The bundle overrides of ``args`` plus ``config``."""
        config = dict(config or {})
        if unknown := sorted(set(config) - set(CONFIG_KEYS)):
            raise ValueError(f"do2dTraining config: unknown keys {unknown}; expected some of {', '.join(CONFIG_KEYS)}")
        settings = {**self.args, **config}
        images, labels = settings.get("training_images"), settings.get("training_labels")
        if images and labels and "dataset_dir" not in settings:
            # recorded in the checkpoints' config; leaving it at its default would write the demo data set
            settings["dataset_dir"] = os.path.commonpath([os.path.abspath(images), os.path.abspath(labels)])
        if ray_tune:
            if settings.setdefault("val_interval", 1) != 1:
                raise ValueError(
                    f"ray_tune=True reports validation metrics every epoch: val_interval must be 1, not {settings['val_interval']}"
                )
            # every trial gets its own runs/ and models/model.pt, in its Tune trial folder
            settings.setdefault("bundle_root", _trial_dir())
        return settings

    def do2dTraining(  # noqa: N802 (original name)
        self, config: dict[str, Any] | None = None, ray_tune: bool = False
    ) -> dict[str, Any]:
        """Train with ``args`` and the hyper-parameters in ``config`` (``lr``, ``max_lr``, ``loss_function``,
        ``augmentations``, ``dropout_rate``; missing ones keep the bundle's defaults). With ``ray_tune`` each epoch's
        ``training_loss``, ``validation_loss``, ``mean_dice`` and ``epoch`` go to ``ray.tune.report`` with the
        run's checkpoint folder. Returns the last epoch's metrics and where the run wrote its files."""
        from scripts.tools.launch import final_metrics

        handlers = []
        if ray_tune:
            from scripts.tools.tune_report import TuneReport

            handlers.append(TuneReport.for_workflow)
        workflow = run_training(self.overrides(config, ray_tune), handlers)
        parsed = workflow.parser.get_parsed_content
        return {
            **final_metrics(workflow),
            "run_dir": parsed("run_dir"),
            "ckpt_dir": parsed("ckpt_dir"),
            "model_path": parsed("model_path"),
        }

    def main(self) -> int:
        result = self.do2dTraining()
        logger.info(
            "Finished: epoch %d, validation loss %.4f, mean Dice %.4f; weights in %s",
            result["epoch"],
            result["validation_loss"],
            result["mean_dice"],
            result["model_path"],
        )
        return 0


def main(argv: list[str] | None = None) -> int:
    return SMALabellerApp.from_cli(argv).main()


if __name__ == "__main__":
    sys.exit(main())
