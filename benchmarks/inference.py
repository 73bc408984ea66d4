"""Inference: seconds per volume of a bare forward pass over all slices vs the bundle's inference path (reading
the NIfTI, orientation, normalisation, in-plane fit, slice inferer, inversion to the scan's grid, writing the mask).

The bundle path is ``configs/inference.json`` through ``monai.bundle.ConfigWorkflow`` (what ``monai.bundle run``
builds), its evaluator run over ``--volumes`` scans per repeat; without that config it falls back to the validation
path of ``configs/train.json`` (slice inferer and inversion, no NIfTI writing) and says so. The bare forward is the
same network with the same weights, eval mode, no_grad, over the ``D`` slices of an in-memory ``spatial_size``²
volume, ``slice_batch`` slices at a time. Both are interleaved; medians are reported.
"""

from __future__ import annotations

import time
from pathlib import Path

if __package__ in (None, ""):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks import common  # noqa: E402


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


def main(argv=None) -> dict:
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
    p.add_argument("--spatial-size", type=int, default=common.cfg_default("spatial_size"))
    p.add_argument("--slice-batch", type=int, default=common.cfg_default("slice_batch"))
    p.add_argument(
        "--num-workers", type=int, default=None, help="loader workers of the bundle path (default: the config's)"
    )
    p.add_argument("--amp", choices=("on", "off"), default="on", help="mixed precision (CUDA only, as in the config)")
    p.add_argument(
        "--one-pass",
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
    amp = args.amp == "on" and args.device == "cuda"
    use_inference = args.config == "inference" or (args.config == "auto" and common.INFERENCE_CONFIG.is_file())
    if not use_inference:
        args.volumes = max(args.volumes, 2)  # train.json checks that a split is possible

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
            "amp": amp,
            "bundle_path": (
                "configs/inference.json (evaluator, NIfTI in and out)"
                if use_inference
                else "configs/train.json validate#evaluator (slice inferer + inversion; no NIfTI writing)"
            ),
        },
    }
    with common.Workdir(args.workdir, "infer") as work:
        started = time.perf_counter()
        data = common.write_dataset(work / "data", args.volumes, args.shape, labels=not use_inference)
        result["settings"]["dataset_write_s"] = round(time.perf_counter() - started, 2)

        from monai.bundle import ConfigParser

        raw = ConfigParser()
        raw.read_config(str(common.INFERENCE_CONFIG if use_inference else common.TRAIN_CONFIG))
        weights = work / "model.pt"
        torch.manual_seed(0)
        torch.save(raw.get_parsed_content("network_def", instantiate=True).state_dict(), weights)

        overrides = {
            "device": common.device_override(args.device),
            "amp": args.amp == "on",
            "spatial_size": args.spatial_size,
            "slice_batch": args.slice_batch,
            "bundle_root": work / "bundle",
        }
        if args.num_workers is not None:
            overrides["num_workers"] = args.num_workers
        if use_inference:
            if args.one_pass == "on":
                overrides.update(inference_planes=["auto"], tta=False, postprocessing_lcc=False)
            workflow = common.config_workflow(
                common.INFERENCE_CONFIG,
                "infer",
                dataset_dir=data / "imagesTr",
                output_dir=work / "predictions",
                ckpt_path=weights,
                **overrides,
            )
            evaluator = workflow.parser.get_parsed_content("evaluator")
        else:
            workflow = common.config_workflow(
                common.TRAIN_CONFIG, "train", dataset_dir=data, split="$(@cases[:1], @cases)", **overrides
            )
            workflow.parser.get_parsed_content("network").load_state_dict(torch.load(weights, weights_only=True))
            evaluator = workflow.parser.get_parsed_content("validate#evaluator")
        phases = PhaseTimer(args.device)
        phases.attach(evaluator)

        network = raw.get_parsed_content("network_def", instantiate=True)
        network.load_state_dict(torch.load(weights, weights_only=True))
        network = network.to(args.device).eval()
        volume = torch.randn(args.shape[2], 1, args.spatial_size, args.spatial_size)

        bare, bundle, bundle_phases, first, rest, outside = [], [], [], [], [], []
        for round_index in range(args.warmup + args.repeats):
            seconds = [bare_forward(network, volume, args.slice_batch, args.device, amp) for _ in range(args.volumes)]
            common.sync(args.device)
            start = time.perf_counter()
            evaluator.run()
            common.sync(args.device)
            run_s = time.perf_counter() - start
            per_volume = run_s / args.volumes
            if round_index >= args.warmup:
                bare.append(sum(seconds) / len(seconds))
                bundle.append(per_volume)
                run = phases.phases[-args.volumes :]
                bundle_phases.extend(run)
                run_phases = [sum(ph.values()) for ph in run]
                # the first scan pays for the loader's start (its workers start after EPOCH_STARTED) and a lone read
                first.append(run_phases[0])
                if args.volumes > 1:
                    rest.append(sum(run_phases[1:]) / (args.volumes - 1))
                outside.append(run_s - sum(run_phases))  # engine start, end-of-run handlers, workers' shutdown
            print(
                f"[round {round_index + 1}/{args.warmup + args.repeats}] bare {sum(seconds) / len(seconds):.3f} s, "
                f"bundle {per_volume:.3f} s per volume",
                flush=True,
            )
        workflow.finalize()

    bare_s, bundle_s = common.median(bare), common.median(bundle)
    phase_medians = {k: common.median([ph[k] for ph in bundle_phases]) for k in ("data_wait_s", "forward_s", "post_s")}
    result["bare_forward_s"] = {"median": bare_s, "per_round": bare}
    result["bundle_s"] = {
        "median": bundle_s,
        "per_round": bundle,
        "phases_median": phase_medians,
        "first_volume_median": common.median(first),
        "outside_iterations_median": common.median(outside),
    }
    result["ratio"] = bundle_s / bare_s
    if rest:
        result["bundle_s"]["after_first_median"] = common.median(rest)
        result["ratio_after_first"] = result["bundle_s"]["after_first_median"] / bare_s
    result["targets"] = {"bundle / bare <= 1.2": result["ratio"] <= 1.2}
    h, w, d = args.shape
    rows = [
        [
            "bare forward",
            f"{d} slices of {args.spatial_size}², {args.slice_batch} per pass, in memory",
            bare_s,
            " / ".join(f"{v:.3f}" for v in bare),
            "",
        ],
        [
            "bundle",
            result["settings"]["bundle_path"],
            bundle_s,
            " / ".join(f"{v:.3f}" for v in bundle),
            f"{result['ratio']:.2f}x bare",
        ],
        [
            "bundle, first scan of a run",
            "the loader's start, a read nothing overlaps, the prefetch of the next scans",
            result["bundle_s"]["first_volume_median"],
            " / ".join(f"{v:.3f}" for v in first),
            f"{result['bundle_s']['first_volume_median'] / bare_s:.2f}x bare",
        ],
    ]
    if rest:
        rows.append(
            [
                "bundle, each later scan",
                "reads overlapped by the loader workers",
                result["bundle_s"]["after_first_median"],
                " / ".join(f"{v:.3f}" for v in rest),
                f"{result['ratio_after_first']:.2f}x bare",
            ]
        )
    rows.append(
        [
            "bundle, outside the scans (once per run)",
            "engine start, end-of-run handlers, loader shutdown",
            result["bundle_s"]["outside_iterations_median"],
            " / ".join(f"{v:.3f}" for v in outside),
            "",
        ]
    )
    breakdown = common.table(
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
    title = (
        f"### inference ({args.device}, {args.threads} threads, amp={amp}; {h}x{w}x{d} scans, {args.volumes} per "
        f"round, median of {args.repeats} rounds, seconds per volume)"
    )
    text = (
        title
        + "\n\n"
        + common.table(["path", "what", "s/volume (median)", "per round", "ratio"], rows)
        + "\n\n"
        + breakdown
        + "\n\n"
        + "\n".join(
            f"- {k} (whole runs): {'holds' if v else 'MISSES'} ({result['ratio']:.2f})"
            for k, v in result["targets"].items()
        )
    )
    common.finish(args, result, text)
    return result


if __name__ == "__main__":
    main()
