"""Hyper-parameter search with Ray Tune: every trial is a run of the bundle's training workflow with overrides.

    pip install -r requirements-tune.txt
    python -m scripts.tools.tune --num_samples 20 --max_epochs 30 --dataset_dir /data/Task01 --cpus_per_trial 2 --gpus_per_trial 1

Search space (the original app's): ``lr`` log-uniform 1e-5..1e-3, ``max_lr`` log-uniform 1e-3..1e-2,
``loss_function`` any of ``scripts.networks.losses.LOSS_NAMES``, ``augmentations`` true | false, ``dropout_rate`` uniform
0..0.6. ASHA stops poor trials early on ``validation_loss``. Each trial runs
``SMALabellerApp(args).do2dTraining(config, ray_tune=True)`` (``scripts/tools/app.py``), which reports ``training_loss``,
``validation_loss``, ``mean_dice`` and ``epoch`` with the run's checkpoint folder after every epoch.

Any other ``--key value`` is a bundle override given to every trial (``--spatial_size 64 --batch_size 4``).
Everything goes to ``--output_dir`` (default ``<bundle>/runs/tune_<time>``)::

    best.json     the best trial's overrides: python -m monai.bundle run --config_file configs/train.json --args_file best.json
    trials.csv    one row per trial: hyper-parameters, last reported metrics, status
    trials/       Ray Tune's results; trials/<trial>/ is also that trial's bundle_root (runs/, models/model.pt)
    ray_tmp/      Ray's session files and logs
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import math
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

from scripts.common.durable_write import csv_text, write_text_durably
from scripts.common.paths import BUNDLE_ROOT
from scripts.common.tool_arguments import ToolArgumentParser
from scripts.config.cli_overrides import split_overrides
from scripts.networks.losses import LOSS_NAMES
from scripts.tools.launch import ensure_importable

logger = logging.getLogger("scripts.tools.tune")

SEARCHED = ("lr", "max_lr", "loss_function", "augmentations", "dropout_rate")
METRICS = ("training_loss", "validation_loss", "mean_dice", "epoch")
METRIC, MODE = "validation_loss", "min"
EXPERIMENT = "trials"  # Ray Tune's results: <output_dir>/trials/<trial>/
# keys the search owns or sets for every trial; they cannot be passed as overrides
RESERVED = {*SEARCHED, "epochs", "bundle_root", "output_dir", "val_interval", "resume", "resume_from", "model_path"}

# AF_UNIX socket paths are at most 107 bytes on Linux; Ray puts <temp_dir>/session_<date>_<pid>/sockets/plasma_store
# there (about 68 bytes after the temp dir). A longer temp dir is reached through a short symlink in the system's
# temp folder; the files themselves stay in <output_dir>/ray_tmp.
MAX_RAY_TEMP_DIR = 38


def search_space() -> dict[str, Any]:
    from ray import tune

    return {
        "lr": tune.loguniform(1e-5, 1e-3),
        "max_lr": tune.loguniform(1e-3, 1e-2),
        "loss_function": tune.choice(list(LOSS_NAMES)),
        "augmentations": tune.choice([True, False]),
        "dropout_rate": tune.uniform(0.0, 0.6),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = ToolArgumentParser(
        prog="python -m scripts.tools.tune",
        description="Ray Tune search over lr, max_lr, loss_function, augmentations and dropout_rate with ASHA; "
        "any other --key value is a bundle override for every trial.",
    )
    parser.add_argument("--num_samples", type=int, default=10, help="trials (default 10)")
    parser.add_argument(
        "--max_epochs", type=int, default=10, help="epochs of a trial that is not stopped early (default 10)"
    )
    parser.add_argument("--dataset_dir", help="imagesTr/ + labelsTr/ (default: the demo set in <bundle>/demo_data)")
    parser.add_argument(
        "--output_dir", help="folder for everything this search writes (default <bundle>/runs/tune_<time>)"
    )
    parser.add_argument("--cpus_per_trial", type=float, default=1.0, help="CPUs reserved per trial (default 1)")
    parser.add_argument(
        "--gpus_per_trial", type=float, default=0.0, help="GPUs reserved per trial, e.g. 0.5 (default 0)"
    )
    parser.add_argument("--num_cpus", type=int, default=os.cpu_count(), help="CPUs Ray may use in all (default: all)")
    parser.add_argument("--num_gpus", type=int, help="GPUs Ray may use in all (default: all it finds)")
    parser.add_argument(
        "--grace_period", type=int, default=1, help="ASHA: epochs before a trial may be stopped (default 1)"
    )
    parser.add_argument(
        "--reduction_factor", type=float, default=2, help="ASHA: share kept at each rung is 1/this (default 2)"
    )
    parser.add_argument("--search_seed", type=int, default=0, help="seed of the random search (default 0)")
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, dict[str, Any]]:
    parser = build_parser()
    rest, overrides = split_overrides(sys.argv[1:] if argv is None else argv, set(parser._option_string_actions))
    args = parser.parse_args(rest)
    if reserved := sorted(set(overrides) & RESERVED):
        parser.error(f"{', '.join('--' + k for k in reserved)}: set by the search (use --max_epochs, --output_dir)")
    for name in ("num_samples", "max_epochs", "grace_period"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.cpus_per_trial <= 0 or args.gpus_per_trial < 0:
        parser.error("--cpus_per_trial must be > 0 and --gpus_per_trial >= 0")
    from scripts.config.setting_names import check_names
    from scripts.tools.launch import config_files

    check_names(overrides, config_files(overrides.get("unet_dimensions")))
    return args, overrides


def trial_settings(args: argparse.Namespace, overrides: dict[str, Any], dataset_dir: str) -> dict[str, Any]:
    """What every trial runs with besides the searched keys."""
    return {**overrides, "dataset_dir": dataset_dir, "epochs": args.max_epochs, "val_interval": 1}


def check_before_start(settings: dict[str, Any]) -> None:
    """The bundle's own settings and data checks, once, before Ray starts: a bad key or a broken case is one clear
    error line here instead of the same error in every trial."""
    from monai.bundle import ConfigParser

    from scripts.config.config_check import problems_in
    from scripts.tools.launch import config_files

    parser = ConfigParser()
    parser.read_config(config_files(settings.get("unet_dimensions")))
    # the searched keys take values from the space, all of which pass the checks; these stand in for them
    parser.update(
        {
            "bundle_root": str(BUNDLE_ROOT),
            **settings,
            "lr": 1e-3,
            "max_lr": 1e-3,
            "loss_function": "dice",
            "dropout_rate": 0.0,
            "augmentations": True,
        }
    )
    parser.get_parsed_content("imports")
    if problems := problems_in(parser.get_parsed_content("run_config")):
        raise SystemExit("configuration error: " + "\n  ".join(problems))
    parser.get_parsed_content("cases")  # scripts.data.verify_data: bad data ends the process with one line per problem


def run_trial(config: dict[str, Any], args: dict[str, Any], bundle_root: str, trials_dir: str) -> None:
    """One Tune trial, in a Ray worker whose working directory is not the bundle: the original app's
    ``do2dTraining(config, ray_tune=True)``, with the trial's folder under ``trials_dir`` as its ``bundle_root``
    (written there directly, not into Ray's local staging folder that Ray would copy there)."""
    ensure_importable(Path(bundle_root))
    from ray import tune

    from scripts.tools.app import SMALabellerApp

    trial_root = os.path.join(trials_dir, trial_dirname(tune.get_context().get_trial_id()))
    SMALabellerApp({**args, "bundle_root": trial_root}).do2dTraining(config, ray_tune=True)


def trial_dirname(trial_id: str) -> str:
    return f"trial_{trial_id}"


class RayTempDir:
    """``<output_dir>/ray_tmp`` for ``ray.init(_temp_dir=...)``, through a short symlink when the path is too long
    for Ray's socket files; the symlink is removed on exit, the files stay."""

    def __init__(self, output_dir: Path) -> None:
        self.target = output_dir / "ray_tmp"
        self.link: str | None = None

    def __enter__(self) -> str:
        self.target.mkdir(parents=True, exist_ok=True)
        if len(str(self.target).encode()) <= MAX_RAY_TEMP_DIR:
            return str(self.target)
        holder = tempfile.mkdtemp(prefix="smal-")  # a unique, short name the symlink can live in
        self.link = os.path.join(holder, "ray")
        os.symlink(self.target, self.link)
        if len(self.link.encode()) > MAX_RAY_TEMP_DIR:
            logger.warning(
                "Ray's temp dir %s is long; Ray may refuse its socket paths (set TMPDIR to a short folder)", self.link
            )
        logger.info("Ray's files go to %s (through the short path %s)", self.target, self.link)
        return self.link

    def __exit__(self, *exc) -> None:
        if self.link:
            os.unlink(self.link)
            os.rmdir(os.path.dirname(self.link))


def plain(value):
    """JSON-friendly Python value from what Tune hands back (numpy scalars included)."""
    return value.item() if hasattr(value, "item") else value


def trial_rows(results) -> list[dict[str, Any]]:
    rows = []
    for result in results:
        metrics = result.metrics or {}
        row = {"trial": metrics.get("trial_id") or os.path.basename(result.path)}
        row.update({key: plain(result.config.get(key)) for key in SEARCHED})
        row.update({key: plain(metrics.get(key, math.nan)) for key in METRICS})
        row["status"] = "ERROR" if result.error else "OK"
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if value and abs(value) < 1e-2 else f"{value:.4f}"
        return str(value)

    columns = list(rows[0]) if rows else ["trial", *SEARCHED, *METRICS, "status"]
    cells = [[cell(row[c]) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def best_overrides(best, settings: dict[str, Any]) -> dict[str, Any]:
    """The best trial's run as ``--args_file`` content: its searched values and the settings every trial shared
    (data, epochs, other overrides), without the trial's own folders. Flags given after ``--args_file`` win, so
    ``--epochs 100`` or ``--dataset_dir`` on the command line retrain with the same hyper-parameters."""
    return {
        **{k: v for k, v in settings.items() if k != "val_interval"},
        **{k: plain(best.config[k]) for k in SEARCHED},
    }


def tune_search(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from scripts.data.demo_data import ensure_demo_dataset

    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H.%M.%S")
    output_dir = Path(args.output_dir or BUNDLE_ROOT / "runs" / f"tune_{stamp}").resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    dataset_dir = (
        os.path.abspath(args.dataset_dir) if args.dataset_dir else ensure_demo_dataset(str(BUNDLE_ROOT / "demo_data"))
    )
    settings = trial_settings(args, overrides, dataset_dir)
    check_before_start(settings)

    # Ray starts its workers from this process's environment: they must import scripts.* from this bundle
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(BUNDLE_ROOT), os.environ.get("PYTHONPATH")) if p)
    # CheckpointConfig(num_to_keep=1) below snapshots the experiment state at every report; that is intended
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports leave the machine unless asked for
    trainable = tune.with_resources(
        tune.with_parameters(
            run_trial, args=settings, bundle_root=str(BUNDLE_ROOT), trials_dir=str(output_dir / EXPERIMENT)
        ),
        {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial},
    )
    scheduler = ASHAScheduler(
        time_attr="training_iteration",
        max_t=args.max_epochs,
        grace_period=min(args.grace_period, args.max_epochs),
        reduction_factor=args.reduction_factor,
    )
    with RayTempDir(output_dir) as temp_dir:
        ray.init(
            num_cpus=args.num_cpus,
            num_gpus=args.num_gpus,
            include_dashboard=False,
            _temp_dir=temp_dir,
            logging_level=logging.WARNING,
        )
        try:
            check_resources(ray.cluster_resources(), args)
            tuner = tune.Tuner(
                trainable,
                param_space=search_space(),
                tune_config=tune.TuneConfig(
                    metric=METRIC,
                    mode=MODE,
                    scheduler=scheduler,
                    num_samples=args.num_samples,
                    search_alg=BasicVariantGenerator(random_state=args.search_seed),
                    trial_dirname_creator=lambda trial: trial_dirname(trial.trial_id),
                ),
                run_config=tune.RunConfig(
                    name=EXPERIMENT,
                    storage_path=str(output_dir),
                    verbose=1,
                    checkpoint_config=tune.CheckpointConfig(
                        num_to_keep=1, checkpoint_score_attribute=METRIC, checkpoint_score_order=MODE
                    ),
                ),
            )
            results = tuner.fit()
        finally:
            ray.shutdown()
    try:
        return summarize(results, settings, output_dir)
    except OSError as error:  # a WriteError (a full disk): one line, the trials' own results stay
        raise SystemExit(f"tuning stopped: {error}; the trials' results under {output_dir} are intact") from None


def check_resources(available: dict[str, float], args: argparse.Namespace) -> None:
    """A trial that asks for more than Ray has would wait forever: refuse it with one line instead."""
    for key, asked in (("CPU", args.cpus_per_trial), ("GPU", args.gpus_per_trial)):
        if asked > available.get(key, 0.0):
            raise SystemExit(
                f"--{key.lower()}s_per_trial {asked:g}: Ray has {available.get(key, 0.0):g} {key}s here "
                f"(--num_{key.lower()}s sets how many it may use)"
            )


def retrain_config_arg(settings: dict[str, Any]) -> str:
    """The ``--config_file`` argument of the bundle run that matches the trials (layered files for 2.5D/3D)."""
    from scripts.tools.launch import config_argument, config_files

    files = [os.path.relpath(f, BUNDLE_ROOT) for f in config_files(settings.get("unet_dimensions"))]
    return shlex.quote(config_argument(files))


def summarize(results, settings: dict[str, Any], output_dir: Path) -> int:
    rows = trial_rows(results)
    print("\nTrials (last reported epoch; ASHA stops trials early):")
    print(format_table(rows))
    write_text_durably(csv_text(rows, list(rows[0])), output_dir / "trials.csv")
    reported = [r for r in results if r.metrics and math.isfinite(r.metrics.get(METRIC, math.nan))]
    if not reported:
        print(f"No trial reported {METRIC}; see the errors under {output_dir / 'trials'}", file=sys.stderr)
        return 1
    best = results.get_best_result(metric=METRIC, mode=MODE, scope="all")
    best_file = output_dir / "best.json"
    write_text_durably(json.dumps(best_overrides(best, settings), indent=2) + "\n", best_file)
    lowest = float(best.metrics_dataframe[METRIC].min())
    print(
        f"\nBest trial {os.path.basename(best.path)}: {METRIC} {lowest:.4f}, the lowest of all trials and epochs; "
        f"its overrides are in {best_file}"
    )
    print(f"Retrain: python -m monai.bundle run --config_file {retrain_config_arg(settings)} --args_file {best_file}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(name)s - %(levelname)s - %(message)s")
    args, overrides = parse_args(argv)
    try:
        import ray  # noqa: F401
    except ImportError:
        raise SystemExit("Ray Tune is not installed: pip install -r requirements-tune.txt") from None
    return tune_search(args, overrides)


if __name__ == "__main__":
    # through the importable module, so Ray pickles run_trial by reference to scripts.tools.tune, not as __main__
    from scripts.tools.tune import main as _main

    sys.exit(_main())
