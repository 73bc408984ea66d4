"""Inference: seconds per volume of a bare forward pass over all slices vs the bundle's inference path (reading
the NIfTI, orientation, normalisation, in-plane fit, slice inferer, inversion to the scan's grid, writing the mask).

The bundle path is ``configs/inference.json`` through ``monai.bundle.ConfigWorkflow`` (what ``monai.bundle run``
builds), its evaluator run over ``--volumes`` scans per repeat; without that config it falls back to the validation
path of ``configs/train.json`` (slice inferer and inversion, no NIfTI writing) and says so. The bare forward is the
same network with the same weights, eval mode, no_grad, over the ``D`` slices of an in-memory ``spatial_size``²
volume, ``slice_batch`` slices at a time. Both are interleaved; medians are reported.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

if __package__ in (None, ""):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks import common  # noqa: E402
from scripts.common.paths import INFERENCE_CONFIG, TRAIN_CONFIG  # noqa: E402
from scripts.config.config_check import literal_defaults  # noqa: E402
from scripts.studies.study_files import markdown_table  # noqa: E402


class PhaseTimer:
    """Per-iteration (one volume) phases of a MONAI evaluator: waiting for data, forward (inferer, including the copy
    to the device), and the rest (decollation, postprocessing: inversion, activation, threshold, NIfTI writing)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.phases: list[dict] = []
        self._last = self._start = self._forward = 0.0

    def attach(self, engine) -> None:
        from ignite.engine import Events
        from monai.engines.utils import IterationEvents

        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        engine.add_event_handler(Events.ITERATION_STARTED, self._iteration_started)
        engine.add_event_handler(IterationEvents.FORWARD_COMPLETED, self._forward_completed)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration_completed)

    def _epoch_started(self, engine) -> None:
        self._last = time.perf_counter()

    def _iteration_started(self, engine) -> None:
        self._start = time.perf_counter()

    def _forward_completed(self, engine) -> None:
        common.sync(self.device)
        self._forward = time.perf_counter()

    def _iteration_completed(self, engine) -> None:
        now = time.perf_counter()
        self.phases.append(
            {
                "data_wait_s": self._start - self._last,
                "forward_s": self._forward - self._start,
                "post_s": now - self._forward,
            }
        )
        self._last = now


def bare_forward(network, volume: torch.Tensor, slice_batch: int, device: str, amp: bool) -> float:
    """Seconds for the network over all slices ``[D, 1, S, S]`` of one volume, ``slice_batch`` at a time."""
    common.sync(device)
    start = time.perf_counter()
    with torch.no_grad(), torch.autocast(device_type=device, enabled=amp):
        x = volume.to(device)
        out = torch.cat([network(chunk) for chunk in x.split(slice_batch)])
        out.float().cpu()
    common.sync(device)
    return time.perf_counter() - start


def parse(argv=None) -> argparse.Namespace:
    defaults = literal_defaults()
    p = common.parser(
        "inference",
        __doc__.splitlines()[0],
        smoke={
            "shape": [40, 36, 12],
            "volumes": 2,
            "repeats": 1,
            "warmup": 0,
            "spatial_size": 32,
            "slice_batch": 8,
            "num_workers": 0,
        },
    )
    p.add_argument(
        "--shape",
        type=int,
        nargs=3,
        default=[256, 256, 180],
        metavar=("H", "W", "D"),
        help="scan shape (default 256 256 180)",
    )
    p.set_defaults(repeats=3)
    p.add_argument(
        "--volumes",
        type=int,
        default=12,
        help="scans per repeat, one inference run (default 12: the loader prefetches num_workers x 2)",
    )
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    p.add_argument("--spatial_size", type=int, default=defaults["spatial_size"])
    p.add_argument("--slice_batch", type=int, default=defaults["slice_batch"])
    p.add_argument(
        "--num_workers", type=int, default=None, help="loader workers of the bundle path (default: the config's)"
    )
    p.add_argument("--amp", choices=("on", "off"), default="on", help="mixed precision (CUDA only, as in the config)")
    p.add_argument(
        "--one_pass",
        choices=("on", "off"),
        default="on",
        help="on (default): the bundle runs the network once per scan, as the bare forward does (inference_planes "
        "[auto], tta and postprocessing_lcc off), so the ratio is the pipeline's overhead; off: inference.json's "
        "defaults (three planes, flip TTA: 12 passes, largest component)",
    )
    p.add_argument(
        "--config",
        choices=("auto", "inference", "train"),
        default="auto",
        help="bundle path: configs/inference.json (auto: if present) or train.json's validation path",
    )
    args = common.parse(p, argv)
    args.amp_on = args.amp == "on" and args.device == "cuda"
    args.use_inference = args.config == "inference" or (args.config == "auto" and INFERENCE_CONFIG.is_file())
    if not args.use_inference:
        args.volumes = max(args.volumes, 2)  # train.json checks that a split is possible
    return args


def bundle_evaluator(args: argparse.Namespace, work: Path, data: Path, weights: Path):
    """(workflow, evaluator) of the bundle's path with ``weights``: inference.json's, else train.json's validation."""
    overrides = {
        "device": common.device_override(args.device),
        "amp": args.amp == "on",
        "spatial_size": args.spatial_size,
        "slice_batch": args.slice_batch,
        "bundle_root": work / "bundle",
    }
    if args.num_workers is not None:
        overrides["num_workers"] = args.num_workers
    if args.use_inference:
        if args.one_pass == "on":
            overrides.update(inference_planes=["auto"], tta=False, postprocessing_lcc=False)
        workflow = common.config_workflow(
            INFERENCE_CONFIG,
            "infer",
            dataset_dir=data / "imagesTr",
            output_dir=work / "predictions",
            ckpt_path=weights,
            **overrides,
        )
        return workflow, workflow.parser.get_parsed_content("evaluator")
    workflow = common.config_workflow(
        TRAIN_CONFIG, "train", dataset_dir=data, split="$(@cases[:1], @cases)", **overrides
    )
    workflow.parser.get_parsed_content("network").load_state_dict(torch.load(weights, weights_only=True))
    return workflow, workflow.parser.get_parsed_content("validate#evaluator")


def timed_rounds(args: argparse.Namespace, network, evaluator, phases: PhaseTimer) -> dict[str, list]:
    """Interleaved rounds of ``--volumes`` bare forwards and one bundle run over as many scans; per timed round the
    seconds per volume of each, the bundle's phases of each scan, its first scan, its later scans, and its time
    outside the scans."""
    volume = torch.randn(args.shape[2], 1, args.spatial_size, args.spatial_size)
    timed = {key: [] for key in ("bare", "bundle", "phases", "first", "rest", "outside")}
    for round_index in range(args.warmup + args.repeats):
        seconds = [
            bare_forward(network, volume, args.slice_batch, args.device, args.amp_on) for _ in range(args.volumes)
        ]
        common.sync(args.device)
        start = time.perf_counter()
        evaluator.run()
        common.sync(args.device)
        run_s = time.perf_counter() - start
        per_volume = run_s / args.volumes
        if round_index >= args.warmup:
            timed["bare"].append(sum(seconds) / len(seconds))
            timed["bundle"].append(per_volume)
            scans = phases.phases[-args.volumes :]
            timed["phases"].extend(scans)
            run_phases = [sum(ph.values()) for ph in scans]
            # the first scan pays for the loader's start (its workers start after EPOCH_STARTED) and a lone read
            timed["first"].append(run_phases[0])
            if args.volumes > 1:
                timed["rest"].append(sum(run_phases[1:]) / (args.volumes - 1))
            timed["outside"].append(run_s - sum(run_phases))  # engine start, end-of-run handlers, workers' shutdown
        print(
            f"[round {round_index + 1}/{args.warmup + args.repeats}] bare {sum(seconds) / len(seconds):.3f} s, "
            f"bundle {per_volume:.3f} s per volume",
            flush=True,
        )
    return timed


def run(args: argparse.Namespace) -> dict:
    result = {
        "benchmark": "inference",
        "system": common.system_info(args.device),
        "settings": {
            "device": args.device,
            "threads": args.threads,
            "shape": args.shape,
            "volumes": args.volumes,
            "repeats": args.repeats,
            "warmup_rounds": args.warmup,
            "spatial_size": args.spatial_size,
            "slice_batch": args.slice_batch,
            "amp": args.amp_on,
            "bundle_path": (
                "configs/inference.json (evaluator, NIfTI in and out)"
                if args.use_inference
                else "configs/train.json validate#evaluator (slice inferer + inversion; no NIfTI writing)"
            ),
        },
    }
    with common.Workdir(args.workdir, "infer") as work:
        started = time.perf_counter()
        data = common.write_dataset(work / "data", args.volumes, args.shape, labels=not args.use_inference)
        result["settings"]["dataset_write_s"] = round(time.perf_counter() - started, 2)

        from monai.bundle import ConfigParser

        raw = ConfigParser()
        raw.read_config(str(INFERENCE_CONFIG if args.use_inference else TRAIN_CONFIG))
        weights = work / "model.pt"
        torch.manual_seed(0)
        torch.save(raw.get_parsed_content("network_def", instantiate=True).state_dict(), weights)
        workflow, evaluator = bundle_evaluator(args, work, data, weights)
        phases = PhaseTimer(args.device)
        phases.attach(evaluator)

        network = raw.get_parsed_content("network_def", instantiate=True)
        network.load_state_dict(torch.load(weights, weights_only=True))
        network = network.to(args.device).eval()
        timed = timed_rounds(args, network, evaluator, phases)
        workflow.finalize()
    summarise(result, timed)
    return result


def summarise(result: dict, timed: dict[str, list]) -> None:
    """The medians, the ratio bundle / bare and the target's verdict, into ``result``."""
    bare_s, bundle_s = common.median(timed["bare"]), common.median(timed["bundle"])
    phase_medians = {
        k: common.median([ph[k] for ph in timed["phases"]]) for k in ("data_wait_s", "forward_s", "post_s")
    }
    result["bare_forward_s"] = {"median": bare_s, "per_round": timed["bare"]}
    result["bundle_s"] = {
        "median": bundle_s,
        "per_round": timed["bundle"],
        "phases_median": phase_medians,
        "first_volume_median": common.median(timed["first"]),
        "first_volume_per_round": timed["first"],
        "outside_iterations_median": common.median(timed["outside"]),
        "outside_iterations_per_round": timed["outside"],
    }
    result["ratio"] = bundle_s / bare_s
    if timed["rest"]:
        result["bundle_s"]["after_first_median"] = common.median(timed["rest"])
        result["bundle_s"]["after_first_per_round"] = timed["rest"]
        result["ratio_after_first"] = result["bundle_s"]["after_first_median"] / bare_s
    result["targets"] = {"bundle / bare <= 1.2": result["ratio"] <= 1.2}


def per_round(values: list[float]) -> str:
    return " / ".join(f"{v:.3f}" for v in values)


def path_rows(args: argparse.Namespace, result: dict) -> list[list]:
    """The table's rows: the bare forward, the bundle, and the bundle's run split into its first scan, its later
    scans and what happens once per run."""
    bare_s, bundle = result["bare_forward_s"]["median"], result["bundle_s"]
    d = args.shape[2]
    rows = [
        [
            "bare forward",
            f"{d} slices of {args.spatial_size}², {args.slice_batch} per pass, in memory",
            bare_s,
            per_round(result["bare_forward_s"]["per_round"]),
            "",
        ],
        [
            "bundle",
            result["settings"]["bundle_path"],
            bundle["median"],
            per_round(bundle["per_round"]),
            f"{result['ratio']:.2f}x bare",
        ],
        [
            "bundle, first scan of a run",
            "the loader's start, a read nothing overlaps, the prefetch of the next scans",
            bundle["first_volume_median"],
            per_round(bundle["first_volume_per_round"]),
            f"{bundle['first_volume_median'] / bare_s:.2f}x bare",
        ],
    ]
    if "after_first_median" in bundle:
        rows.append(
            [
                "bundle, each later scan",
                "reads overlapped by the loader workers",
                bundle["after_first_median"],
                per_round(bundle["after_first_per_round"]),
                f"{result['ratio_after_first']:.2f}x bare",
            ]
        )
    rows.append(
        [
            "bundle, outside the scans (once per run)",
            "engine start, end-of-run handlers, loader shutdown",
            bundle["outside_iterations_median"],
            per_round(bundle["outside_iterations_per_round"]),
            "",
        ]
    )
    return rows


def report(args: argparse.Namespace, result: dict) -> None:
    phase_medians = result["bundle_s"]["phases_median"]
    breakdown = markdown_table(
        ["bundle phase (median per volume)", "s"],
        [
            [
                "waiting for data (read, orient, normalise, fit; overlapped by loader workers)",
                phase_medians["data_wait_s"],
            ],
            ["forward (slice inferer, incl. copy to device)", phase_medians["forward_s"]],
            ["inversion, threshold, writing", phase_medians["post_s"]],
        ],
    )
    h, w, d = args.shape
    title = (
        f"### inference ({args.device}, {args.threads} threads, amp={args.amp_on}; {h}x{w}x{d} scans, {args.volumes} "
        f"per round, median of {args.repeats} rounds, seconds per volume)"
    )
    text = (
        title
        + "\n\n"
        + markdown_table(["path", "what", "s/volume (median)", "per round", "ratio"], path_rows(args, result))
        + "\n\n"
        + breakdown
        + "\n\n"
        + "\n".join(
            f"- {k} (whole runs): {'holds' if v else 'MISSES'} ({result['ratio']:.2f})"
            for k, v in result["targets"].items()
        )
    )
    common.finish(args, result, text)


def main(argv=None) -> dict:
    args = parse(argv)
    result = run(args)
    report(args, result)
    return result


if __name__ == "__main__":
    main()
