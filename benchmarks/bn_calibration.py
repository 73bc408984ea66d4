"""BatchNorm calibration (scripts.handlers.precise_bn) as a share of one training epoch.

One process, ``configs/train.json`` through ``monai.bundle.ConfigWorkflow`` with default settings on synthetic NIfTI
volumes (``--iters_per_epoch`` x ``batch_size`` training volumes), validation off. Two trainers run interleaved
epochs: one with the config's ``BatchNormCalibration`` closing a window at the end of every epoch (its ``interval``
set to 1, so every epoch pays what a validation epoch pays), one with ``bn_calibration false``. Reported: the median
epoch of each, their ratio, and the time spent inside the calibration handler itself (timed around its calls).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

if __package__ in (None, ""):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402
from scripts.common.paths import TRAIN_CONFIG  # noqa: E402
from scripts.config.config_check import literal_defaults  # noqa: E402
from scripts.studies.study_files import markdown_table  # noqa: E402


def calibration_handler_index() -> int:
    handlers = json.loads(TRAIN_CONFIG.read_text())["train"]["handlers"]
    return next(
        i
        for i, h in enumerate(handlers)  # a handler may be a reference ("@train#...") rather than a component
        if isinstance(h, dict) and h.get("_target_") == "scripts.handlers.precise_bn.BatchNormCalibration"
    )


def time_handler_calls(cls, spent: list[float]) -> None:
    """Wrap the handler's event methods so the seconds spent in them add up in ``spent[0]``."""
    for name in ("_start_window", "_continue_window", "_end_window", "_restore"):
        method = getattr(cls, name)

        def timed(self, engine, _method=method):
            start = time.perf_counter()
            try:
                return _method(self, engine)
            finally:
                spent[0] += time.perf_counter() - start

        setattr(cls, name, timed)


def parse(argv=None) -> argparse.Namespace:
    p = common.parser(
        "bn_calibration",
        __doc__.splitlines()[0],
        smoke={
            "iters_per_epoch": 2,
            "shape": [24, 24, 8],
            "repeats": 1,
            "warmup_rounds": 0,
            "spatial_size": 32,
            "slices_per_volume": 4,
            "num_workers": 0,
        },
    )
    p.set_defaults(repeats=5)
    p.add_argument("--iters_per_epoch", type=int, default=6, help="training iterations per epoch (default 6)")
    p.add_argument("--shape", type=int, nargs=3, default=[128, 128, 64], metavar=("H", "W", "D"))
    p.add_argument("--warmup_rounds", type=int, default=1)
    p.add_argument("--spatial_size", type=int, default=None, help="override the config's spatial_size")
    p.add_argument("--slices_per_volume", type=int, default=None, help="override the config's slices_per_volume")
    p.add_argument("--num_workers", type=int, default=None, help="override the config's num_workers")
    p.add_argument(
        "--bn_calibration_batches", type=int, default=None, help="override the config's bn_calibration_batches"
    )
    args = common.parse(p, argv)
    args.overrides = {
        k: getattr(args, k)
        for k in ("spatial_size", "slices_per_volume", "num_workers", "bn_calibration_batches")
        if getattr(args, k) is not None
    }
    return args


def trainers(args: argparse.Namespace, work: Path, data: Path) -> dict:
    """name -> (workflow, epoch timer) of the trainer with calibration after every epoch and of the one without."""
    made = {}
    for name, calibrate in (("with", True), ("without", False)):
        workflow = common.config_workflow(
            TRAIN_CONFIG,
            "train",
            bundle_root=work / name,
            dataset_dir=data,
            device=common.device_override(args.device),
            epochs=args.warmup_rounds + args.repeats,
            iterations_per_epoch=args.iters_per_epoch,
            val_interval=common.NO_VALIDATION,
            bn_calibration=calibrate,
            **{f"train#handlers#{calibration_handler_index()}#interval": 1},
            **args.overrides,
        )
        timer = common.EpochTimer(1, args.device)
        timer.attach(workflow.trainer)
        made[name] = (workflow, timer)
    return made


def interleaved_rounds(args: argparse.Namespace, runs: dict, spent: list[float]) -> list[dict]:
    """One epoch of each trainer per round, in turn: the seconds of each and those inside the calibration handler."""
    rounds = args.warmup_rounds + args.repeats
    samples = []
    for round_index in range(rounds):
        sample = {"warmup_round": round_index < args.warmup_rounds}
        for name, (workflow, timer) in runs.items():
            spent[0] = 0.0
            common.sync(args.device)
            start = time.perf_counter()
            common.run_one_epoch(workflow.trainer)
            sample[f"epoch_{name}_s"] = timer.epochs[-1]["end"] - start
            if name == "with":
                sample["handler_s"] = spent[0]
        samples.append(sample)
        print(
            f"[round {round_index + 1}/{rounds}] epoch with calibration {sample['epoch_with_s']:.2f} s "
            f"(in the handler {sample['handler_s'] * 1000:.1f} ms), without {sample['epoch_without_s']:.2f} s",
            flush=True,
        )
    return samples


def run(args: argparse.Namespace) -> dict:
    from scripts.handlers.precise_bn import BatchNormCalibration

    defaults = literal_defaults()
    result = {
        "benchmark": "bn_calibration",
        "system": common.system_info(args.device),
        "settings": {
            "device": args.device,
            "threads": args.threads,
            "iters_per_epoch": args.iters_per_epoch,
            "shape": args.shape,
            "repeats": args.repeats,
            "warmup_rounds": args.warmup_rounds,
            "overrides": args.overrides,
            "validation": "off (val_interval beyond the run); calibration window closed after every epoch",
            "bn_calibration_batches": args.overrides.get("bn_calibration_batches", defaults["bn_calibration_batches"]),
        },
    }
    spent = [0.0]
    time_handler_calls(BatchNormCalibration, spent)
    with common.Workdir(args.workdir, "bn") as work:
        n_volumes = common.volumes_for_training_set(
            args.iters_per_epoch * defaults["batch_size"], defaults["val_set_size"]
        )
        data = common.write_dataset(work / "data", n_volumes, args.shape)
        result["settings"]["volumes"] = n_volumes
        runs = trainers(args, work, data)
        samples = interleaved_rounds(args, runs, spent)
        for workflow, _ in runs.values():
            workflow.finalize()

    timed = [s for s in samples if not s["warmup_round"]]
    med = {k: common.median([s[k] for s in timed]) for k in ("epoch_with_s", "epoch_without_s", "handler_s")}
    share = med["handler_s"] / med["epoch_without_s"]
    ratio = med["epoch_with_s"] / med["epoch_without_s"]
    result.update({"samples": samples, "medians": med, "share_of_epoch": share, "epoch_ratio": ratio})
    result["targets"] = {"calibration <= 5% of an epoch": share <= 0.05}
    return result


def report(args: argparse.Namespace, result: dict) -> None:
    med, share, ratio = result["medians"], result["share_of_epoch"], result["epoch_ratio"]
    rows = [
        [
            "epoch without calibration",
            f"{args.iters_per_epoch} iterations, default handlers, bn_calibration false",
            med["epoch_without_s"],
            "",
        ],
        [
            "epoch with calibration",
            f"window of the last {result['settings']['bn_calibration_batches']} iterations closed at its end",
            med["epoch_with_s"],
            f"{100 * (ratio - 1):+.1f}% (difference of two noisy epochs)",
        ],
        [
            "  in the calibration handler",
            "reset + momentum, restore (timed around its calls)",
            med["handler_s"],
            f"{100 * share:.2f}%",
        ],
    ]
    text = (
        f"### bn_calibration ({args.device}, {args.threads} threads; {args.shape[0]}x{args.shape[1]}x{args.shape[2]} volumes, "
        f"median of {args.repeats} interleaved rounds)\n\n"
        + markdown_table(["part", "what", "s (median)", "share of epoch"], rows)
        + f"\n\n- calibration <= 5% of an epoch: {'holds' if share <= 0.05 else 'MISSES'} ({100 * share:.2f}% in the handler; "
        f"epochs with/without {ratio:.3f})"
    )
    common.finish(args, result, text)


def main(argv=None) -> dict:
    args = parse(argv)
    result = run(args)
    report(args, result)
    return result


if __name__ == "__main__":
    main()
