"""BatchNorm calibration (scripts.precise_bn) as a share of one training epoch.

One process, ``configs/train.json`` through ``monai.bundle.ConfigWorkflow`` with default settings on synthetic NIfTI
volumes (``--iters-per-epoch`` x ``batch_size`` training volumes). Interleaved, per round: one training epoch (all
default handlers, validation off so it is not counted) and the config's own ``BatchNormCalibration`` handler called
as it is before each validation (``bn_calibration_batches`` batches drawn from the training loader, forward only);
then the same two parts of calibration apart: drawing the batches, and ``update_bn_stats`` on batches in memory.
With ``val_interval`` 1 (the default) calibration runs after every epoch, so its share of an epoch is its overhead.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

if __package__ in (None, ""):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402


def main(argv=None) -> dict:
    p = common.parser("bn_calibration", __doc__.splitlines()[0], smoke={
        "iters_per_epoch": 2, "shape": [24, 24, 8], "repeats": 1, "warmup_rounds": 0, "spatial_size": 32,
        "slices_per_volume": 4, "num_workers": 0,
    })
    p.add_argument("--iters-per-epoch", type=int, default=6, help="training iterations per epoch (default 6)")
    p.add_argument("--shape", type=int, nargs=3, default=[128, 128, 64], metavar=("H", "W", "D"))
    p.add_argument("--warmup-rounds", type=int, default=1)
    p.add_argument("--spatial-size", type=int, default=None, help="override the config's spatial_size")
    p.add_argument("--slices-per-volume", type=int, default=None, help="override the config's slices_per_volume")
    p.add_argument("--num-workers", type=int, default=None, help="override the config's num_workers")
    p.add_argument("--bn-calibration-batches", type=int, default=None, help="override the config's bn_calibration_batches")
    args = common.parse(p, argv)

    from scripts.precise_bn import BatchNormCalibration, update_bn_stats
    from scripts.training_state import unwrap

    overrides = {k: v for k, v in (("spatial_size", args.spatial_size), ("slices_per_volume", args.slices_per_volume),
                                   ("num_workers", args.num_workers), ("bn_calibration_batches", args.bn_calibration_batches))
                 if v is not None}
    batch_size = common.cfg_default("batch_size")
    rounds = args.warmup_rounds + args.repeats
    result = {"benchmark": "bn_calibration", "system": common.system_info(args.device), "settings": {
        "device": args.device, "threads": args.threads, "iters_per_epoch": args.iters_per_epoch, "shape": args.shape,
        "repeats": args.repeats, "warmup_rounds": args.warmup_rounds, "overrides": overrides,
        "validation": "off during the timed epochs (val_interval beyond the run)",
    }}
    with common.Workdir(args.workdir, "bn") as work:
        n_volumes = common.volumes_for_training_set(args.iters_per_epoch * batch_size, common.cfg_default("val_set_size"))
        data = common.write_dataset(work / "data", n_volumes, args.shape)
        result["settings"]["volumes"] = n_volumes
        workflow = common.config_workflow(
            common.TRAIN_CONFIG, "train", bundle_root=work / "bundle", dataset_dir=data, device=common.device_override(args.device),
            epochs=rounds, val_interval=common.NO_VALIDATION, **overrides,
        )
        trainer = workflow.trainer
        calibration = next(h for h in workflow.parser.get_parsed_content("train#handlers") if isinstance(h, BatchNormCalibration))
        result["settings"]["bn_calibration_batches"] = calibration.num_batches
        result["settings"]["slice_batch"] = calibration.slice_batch
        timer = common.EpochTimer(1, args.device)
        timer.attach(trainer)

        samples = []
        for round_index in range(rounds):
            common.sync(args.device)
            start = time.perf_counter()
            common.run_one_epoch(trainer)
            epoch = timer.epochs[-1]
            epoch_s = epoch["end"] - start
            iteration_s = common.median(epoch["iteration_s"]) if epoch["iteration_s"] else epoch["steady_s"]

            common.sync(args.device)
            t0 = time.perf_counter()
            calibration(trainer)
            common.sync(args.device)
            t1 = time.perf_counter()
            batches = [calibration.prepare_batch(b, calibration.device)[0]
                       for b in itertools.islice(calibration.data_loader, calibration.num_batches)]
            common.sync(args.device)
            t2 = time.perf_counter()
            slices = update_bn_stats(unwrap(calibration.network), batches, calibration.slice_batch)
            common.sync(args.device)
            t3 = time.perf_counter()
            sample = {"calibration_batches": len(batches), "epoch_s": epoch_s, "iteration_s": iteration_s, "calibration_s": t1 - t0,
                      "calibration_draw_s": t2 - t1, "calibration_forward_s": t3 - t2, "calibration_slices": slices,
                      "warmup_round": round_index < args.warmup_rounds}
            samples.append(sample)
            print(f"[round {round_index + 1}/{rounds}] epoch {epoch_s:.2f} s, calibration {t1 - t0:.2f} s "
                  f"(drawing batches {t2 - t1:.2f} s, forward {t3 - t2:.2f} s)", flush=True)
        workflow.finalize()

    timed = [s for s in samples if not s["warmup_round"]]
    med = {k: common.median([s[k] for s in timed]) for k in ("epoch_s", "iteration_s", "calibration_s", "calibration_draw_s", "calibration_forward_s")}
    share = med["calibration_s"] / med["epoch_s"]
    used = timed[-1]["calibration_batches"]  # bn_calibration_batches, or fewer when an epoch has fewer
    per_batch = med["calibration_s"] / max(1, used)
    result.update({
        "samples": samples, "medians": med, "share_of_epoch": share,
        "share_of_epoch_forward_only": med["calibration_forward_s"] / med["epoch_s"],
        # the epoch length (iterations) from which this calibration costs at most 5% of an epoch
        "iterations_per_epoch_for_5_percent": med["calibration_s"] / (0.05 * med["iteration_s"]),
        # the most calibration batches that cost at most 5% of this epoch
        "max_batches_for_5_percent": int(0.05 * med["epoch_s"] // per_batch) if per_batch > 0 else None,
    })
    result["targets"] = {"calibration <= 5% of an epoch": share <= 0.05}
    rows = [
        ["one training epoch", f"{args.iters_per_epoch} iterations, default handlers, no validation", med["epoch_s"], ""],
        ["BN calibration (config handler)", f"{used} batches of the training loader, forward only", med["calibration_s"], f"{100 * share:.1f}%"],
        ["  of which: drawing the batches", "loading + augmentation through the training loader", med["calibration_draw_s"], f"{100 * med['calibration_draw_s'] / med['epoch_s']:.1f}%"],
        ["  of which: forward passes", f"update_bn_stats on batches in memory, {calibration.slice_batch} slices per pass", med["calibration_forward_s"], f"{100 * result['share_of_epoch_forward_only']:.1f}%"],
    ]
    text = (
        f"### bn_calibration ({args.device}, {args.threads} threads; {args.shape[0]}x{args.shape[1]}x{args.shape[2]} volumes, "
        f"median of {args.repeats} rounds)\n\n"
        + common.table(["part", "what", "s (median)", "share of epoch"], rows)
        + f"\n\n- calibration <= 5% of an epoch: {'holds' if share <= 0.05 else 'MISSES'} ({100 * share:.1f}%); it would hold from "
        f"{result['iterations_per_epoch_for_5_percent']:.0f} iterations per epoch, or here with at most "
        f"{result['max_batches_for_5_percent']} calibration batches"
    )
    common.finish(args, result, text)
    return result


if __name__ == "__main__":
    main()
