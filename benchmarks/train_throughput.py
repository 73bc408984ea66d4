"""Training throughput in slices/s: (a) a bare PyTorch loop, (b) the bundle's trainer with all default handlers on
in-memory batches, (c) the bundle's trainer on real NIfTI loading, for each data-caching choice.

Runs are interleaved (a b c... a b c...); each run is one epoch of ``--iters_per_epoch`` iterations, timed from the
end of its first ``--warmup`` iterations to the end of its last epoch-level handler. Medians over ``--repeats``
rounds (after ``--warmup_rounds`` untimed rounds) and the ratios b/a and c/b come from one process.

(b) and (c) are ``configs/train.json`` through ``monai.bundle.ConfigWorkflow`` with overrides: validation is off
(``val_interval`` beyond the run, which also keeps BatchNorm calibration out; see benchmarks.bn_calibration);
(b) replaces ``train#dataloader`` by ready batches in memory. (a) uses the config's ``network_def``, the same AdamW,
OneCycleLR, loss (``scripts.networks.losses.build_loss``), slices per step and threads, and no handlers.
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
from scripts.common.paths import TRAIN_CONFIG  # noqa: E402
from scripts.common.tool_arguments import ToolArgumentParser  # noqa: E402
from scripts.config.config_check import literal_defaults  # noqa: E402
from scripts.studies.study_files import markdown_table  # noqa: E402

# (c) runs: the config's `cache` knob (scripts/data/data_cache.py), and with a ThreadDataLoader in the main process
CACHE_MODES = {
    "disk": "PersistentDataset(cache_dir), DataLoader(num_workers)",
    "memory": "CacheDataset(cache_rate=1.0), DataLoader(num_workers)",
    "none": "Dataset, DataLoader(num_workers)",
    "disk_thread": "PersistentDataset(cache_dir), ThreadDataLoader(num_workers=0)",
    "memory_thread": "CacheDataset(cache_rate=1.0), ThreadDataLoader(num_workers=0)",
}


def cache_overrides(mode: str, cache_dir: Path) -> dict:
    if mode == "default":
        return {"cache_dir": str(cache_dir)}
    if mode not in CACHE_MODES:
        raise ValueError(f"unknown cache mode {mode!r}: use {', '.join(CACHE_MODES)}")
    overrides = {"cache": mode.removesuffix("_thread"), "cache_dir": str(cache_dir)}
    if mode.endswith("_thread"):
        overrides["train#dataloader"] = {
            "_target_": "ThreadDataLoader",
            "dataset": "@train#dataset",
            "batch_size": "@batch_size",
            "shuffle": True,
            "num_workers": 0,
        }
    return overrides


def profile_transforms(workflow, items: int = 6) -> dict:
    """Per-volume cost of each transform of ``train#preprocessing`` (the config's own objects), in one thread as in a
    loader worker: median milliseconds per volume over ``items`` volumes of the training split."""
    from monai.transforms import Randomizable, apply_transform

    compose = workflow.parser.get_parsed_content("train#preprocessing")
    data = workflow.parser.get_parsed_content("split")[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times: list[list[float]] = [[] for _ in compose.transforms]
        for index in range(items):
            d = dict(data[index % len(data)])
            for k, transform in enumerate(compose.transforms):
                start = time.perf_counter()
                d = apply_transform(transform, d, map_items=True, unpack_items=False)
                times[k].append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    rows = []
    for transform, seconds in zip(compose.transforms, times, strict=True):
        rows.append(
            {
                "transform": type(transform).__name__,
                "random": isinstance(transform, Randomizable),
                "ms_per_volume": 1000 * common.median(seconds[1:] or seconds),
            }
        )
    return {
        "transforms": rows,
        "cacheable_ms": sum(
            r["ms_per_volume"] for r in rows[: next((i for i, r in enumerate(rows) if r["random"]), len(rows))]
        ),
        "total_ms": sum(r["ms_per_volume"] for r in rows),
    }


class BareLoop:
    """Run (a): the config's network, optimizer, schedule and loss in a plain loop over in-memory slices."""

    def __init__(self, args, settings: dict, total_epochs: int) -> None:
        from monai.bundle import ConfigParser

        import scripts.networks.losses
        from scripts.networks.slicing import volumes_to_slices

        parser = ConfigParser()
        parser.read_config(str(TRAIN_CONFIG))
        parser["dropout_rate"] = settings["dropout_rate"]
        self.device, self.amp, self.warmup = args.device, args.amp_on and args.device == "cuda", args.warmup
        self.network = parser.get_parsed_content("network_def", instantiate=True).to(args.device)
        self.model = torch.compile(self.network) if args.compile else self.network
        self.optimizer = torch.optim.AdamW(
            self.network.parameters(), lr=settings["lr"], weight_decay=parser["optimizer"]["weight_decay"]
        )
        batches = common.InMemoryBatches(
            args.iters_per_epoch, settings["batch_size"], settings["slices_per_volume"], settings["spatial_size"]
        )
        self.batches = [(volumes_to_slices(b["image"]), volumes_to_slices(b["label"])) for b in batches]
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer,
            max_lr=settings["max_lr"],
            div_factor=settings["max_lr"] / settings["lr"],
            total_steps=total_epochs * len(self.batches),
        )
        self.loss = scripts.networks.losses.build_loss(settings["loss_function"])
        self.scaler = torch.amp.GradScaler("cuda") if self.amp else None

    def epoch(self) -> dict:
        common.sync(self.device)
        start = time.perf_counter()
        self.model.train()
        t0 = previous = start
        iteration_s = []
        for i, (image, label) in enumerate(self.batches, 1):
            image, label = image.to(self.device), label.to(self.device)
            self.optimizer.zero_grad(set_to_none=False)
            if self.scaler is not None:
                with torch.autocast("cuda"):
                    loss = self.loss(self.model(image), label).mean()
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss = self.loss(self.model(image), label).mean()
                loss.backward()
                self.optimizer.step()
            self.scheduler.step()
            if i >= self.warmup:
                common.sync(self.device)
                now = time.perf_counter()
                if i == self.warmup:
                    t0 = now
                else:
                    iteration_s.append(now - previous)
                previous = now
        end = time.perf_counter()
        return {
            "steady_s": end - t0,
            "timed_iterations": len(self.batches) - self.warmup,
            "iteration_s": iteration_s,
            "epoch_s": end - start,
            "epoch_end_s": 0.0,
        }


class BundleRun:
    """Runs (b) and (c): the bundle's own ``SupervisedTrainer`` from configs/train.json, one epoch per call."""

    def __init__(
        self, args, bundle_root: Path, dataset_dir: Path, total_epochs: int, overrides: dict, profile: bool = False
    ) -> None:
        settings = {
            "epochs": total_epochs,
            "iterations_per_epoch": args.iters_per_epoch,
            "val_interval": common.NO_VALIDATION,
            "amp": args.amp_on,
            "batch_size": args.batch_size,
            "slices_per_volume": args.slices_per_volume,
            "spatial_size": args.spatial_size,
            "num_workers": args.num_workers,
        }
        if args.compile:
            settings["compile"] = True
        self.workflow = common.config_workflow(
            TRAIN_CONFIG,
            "train",
            bundle_root=bundle_root,
            dataset_dir=dataset_dir,
            device=common.device_override(args.device),
            **settings,
            **overrides,
        )
        self.trainer = self.workflow.trainer
        self.timer = common.EpochTimer(args.warmup, args.device)
        self.timer.attach(self.trainer)  # after every handler of the config
        self.device = args.device
        self.profiler = None
        if profile:
            from ignite.handlers import HandlersTimeProfiler

            self.profiler = HandlersTimeProfiler()
            self.profiler.attach(self.trainer)

    def epoch(self) -> dict:
        common.sync(self.device)
        start = time.perf_counter()
        common.run_one_epoch(self.trainer)
        result = dict(self.timer.epochs[-1])
        result["epoch_s"] = result.pop("end") - start
        return result

    def close(self) -> None:
        self.workflow.finalize()


def make_parser(defaults: dict) -> ToolArgumentParser:
    p = common.parser(
        "train_throughput",
        __doc__.splitlines()[0],
        smoke={
            "iters_per_epoch": 2,
            "repeats": 1,
            "warmup_rounds": 0,
            "shape": [24, 24, 8],
            "spatial_size": 32,
            "slices_per_volume": 4,
            "batch_size": 2,
            "num_workers": 0,
        },
    )
    p.set_defaults(repeats=9)
    p.add_argument("--iters_per_epoch", type=int, default=6, help="iterations per timed epoch (default 6)")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations at the start of each epoch (default 1)")
    p.add_argument("--warmup_rounds", type=int, default=1, help="untimed rounds of all runs first (default 1)")
    p.add_argument(
        "--shape", type=int, nargs=3, default=[128, 128, 64], metavar=("H", "W", "D"), help="NIfTI volume shape for (c)"
    )
    p.add_argument("--batch_size", type=int, default=defaults["batch_size"])
    p.add_argument("--slices_per_volume", type=int, default=defaults["slices_per_volume"])
    p.add_argument("--spatial_size", type=int, default=defaults["spatial_size"])
    p.add_argument(
        "--num_workers", type=int, default=defaults["num_workers"], help="(c) loader workers (config default)"
    )
    p.add_argument(
        "--cache",
        default=",".join(CACHE_MODES),
        help=f"comma-separated cache modes for (c): {', '.join(CACHE_MODES)}, default (the config as it is)",
    )
    p.add_argument("--amp", choices=("on", "off"), default="on", help="mixed precision (CUDA only, as in the config)")
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile: (a) compiles the network, (b)/(c) set the config's `compile` key",
    )
    p.add_argument("--runs", default="a,b,c", help="which of a,b,c to run (default all)")
    p.add_argument(
        "--profile_handlers",
        action="store_true",
        help="print Ignite's per-handler times for (b) (adds a little overhead)",
    )
    p.add_argument(
        "--profile_transforms",
        choices=("on", "off"),
        default="on",
        help="time each transform of train#preprocessing per volume in one thread (default on)",
    )
    p.add_argument(
        "--data_dir", type=Path, default=None, help="reuse/keep the NIfTI data here (e.g. across gpu.sh runs)"
    )
    return p


def parse(argv=None) -> argparse.Namespace:
    defaults = literal_defaults()
    p = make_parser(defaults)
    args = common.parse(p, argv)
    args.amp_on = args.amp == "on"
    if args.warmup < 1 or args.iters_per_epoch <= args.warmup:
        p.error("need 1 <= --warmup < --iters_per_epoch")
    args.runs_wanted = set(args.runs.split(","))
    args.modes = [m for m in args.cache.split(",") if m] if "c" in args.runs_wanted else []
    for m in args.modes:
        if m not in CACHE_MODES and m != "default":
            p.error(f"--cache {m}: use one of {', '.join(CACHE_MODES)}, default")
    # the config's own data pipeline is always measured: as the mode it equals, or as a run of its own
    args.config_mode = defaults["cache"]
    if args.modes and args.config_mode not in args.modes and "default" not in args.modes:
        args.modes.append("default")
    args.slices_per_iteration = args.batch_size * args.slices_per_volume
    args.settings = {k: defaults[k] for k in ("lr", "max_lr", "loss_function", "dropout_rate")}
    args.settings.update(
        batch_size=args.batch_size, slices_per_volume=args.slices_per_volume, spatial_size=args.spatial_size
    )
    return args


def build_runs(args: argparse.Namespace, work: Path, result: dict) -> tuple[dict, dict]:
    """The runs asked for, name -> run, and what each is, name -> label; the NIfTI data written for (b) and (c)."""
    total_epochs = args.warmup_rounds + args.repeats
    runs: dict[str, object] = {}
    labels: dict[str, str] = {}
    if "a" in args.runs_wanted:
        runs["a"] = BareLoop(args, args.settings, total_epochs)
        labels["a"] = "bare PyTorch loop, in-memory slices, no handlers"
    if args.modes or "b" in args.runs_wanted:
        data_dir = args.data_dir or work / "data"
        n_volumes = common.volumes_for_training_set(
            args.iters_per_epoch * args.batch_size, literal_defaults()["val_set_size"]
        )
        started = time.perf_counter()
        common.write_dataset(data_dir, n_volumes, args.shape)
        result["settings"]["volumes"] = n_volumes
        result["settings"]["dataset_write_s"] = round(time.perf_counter() - started, 2)
    if "b" in args.runs_wanted:
        in_memory = {
            "train#dataloader": {
                "_target_": "benchmarks.common.InMemoryBatches",
                "length": args.iters_per_epoch,
                "batch_size": "@batch_size",
                "slices_per_volume": "@slices_per_volume",
                "spatial_size": "@spatial_size",
            }
        }
        runs["b"] = BundleRun(args, work / "b", data_dir, total_epochs, in_memory, profile=args.profile_handlers)
        labels["b"] = "bundle trainer, all default handlers, in-memory batches"
    for mode in args.modes:
        runs[f"c:{mode}"] = BundleRun(
            args, work / f"c-{mode}", data_dir, total_epochs, cache_overrides(mode, work / f"cache-{mode}")
        )
        what = CACHE_MODES.get(mode, "configs/train.json's data pipeline as it is")
        labels[f"c:{mode}"] = f"bundle trainer, NIfTI, cache={mode}: {what}" + (
            " (config default)" if mode == args.config_mode else ""
        )
    return runs, labels


def interleaved_rounds(args: argparse.Namespace, runs: dict) -> dict[str, list[dict]]:
    """One epoch of every run per round, in turn (a b c... a b c...): each epoch's timings, name -> epochs."""
    total_epochs = args.warmup_rounds + args.repeats
    bundle_flags = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    samples = {name: [] for name in runs}
    for round_index in range(total_epochs):
        for name, trainer in runs.items():
            # the bare loop runs with PyTorch's default cuDNN flags, the bundle with those its config sets
            flags = (False, False) if name == "a" else bundle_flags
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = flags
            with common.GpuUtilisation(args.device) as gpu:
                epoch = trainer.epoch()
            epoch["gpu_utilisation"] = gpu.mean
            epoch["slices_per_s"] = epoch["timed_iterations"] * args.slices_per_iteration / epoch["steady_s"]
            epoch["epoch_slices_per_s"] = args.iters_per_epoch * args.slices_per_iteration / epoch["epoch_s"]
            epoch["warmup_round"] = round_index < args.warmup_rounds
            samples[name].append(epoch)
            print(f"[round {round_index + 1}/{total_epochs}] {name}: {epoch['slices_per_s']:.1f} slices/s", flush=True)
    return samples


def run(args: argparse.Namespace) -> dict:
    result = {
        "benchmark": "train_throughput",
        "system": common.system_info(args.device),
        "settings": {
            **args.settings,
            "device": args.device,
            "threads": args.threads,
            "iters_per_epoch": args.iters_per_epoch,
            "warmup_iterations": args.warmup,
            "warmup_rounds": args.warmup_rounds,
            "repeats": args.repeats,
            "shape": args.shape,
            "num_workers": args.num_workers,
            "amp": args.amp_on and args.device == "cuda",
            "compile": args.compile,
            "slices_per_iteration": args.slices_per_iteration,
            "validation": "off (val_interval beyond the run)",
        },
        "runs": {},
    }
    with common.Workdir(args.workdir, "train") as work:
        runs, labels = build_runs(args, work, result)
        if args.modes and args.profile_transforms == "on":
            first = next(trainer for name, trainer in runs.items() if name.startswith("c:"))
            result["loader_profile"] = profile_transforms(first.workflow)
        samples = interleaved_rounds(args, runs)
        if args.profile_handlers and "b" in runs:
            profiler = runs["b"].profiler
            profiler.print_results(profiler.get_results())
        for trainer in runs.values():
            if isinstance(trainer, BundleRun):
                trainer.close()
    summarise_runs(args, result, samples, labels)
    compare_runs(args, result, samples)
    loader_bound(args, result)
    return result


def timed_rounds(epochs: list[dict]) -> list[dict]:
    return [e for e in epochs if not e["warmup_round"]]


def summarise_runs(args: argparse.Namespace, result: dict, samples: dict, labels: dict) -> None:
    """Each run's medians over the timed rounds, into ``result["runs"]``."""
    timed_iterations = args.iters_per_epoch - args.warmup
    for name, epochs in samples.items():
        timed = timed_rounds(epochs)
        gpu = [e["gpu_utilisation"] for e in timed if e["gpu_utilisation"] is not None]
        iteration_median = common.median([t for e in timed for t in e["iteration_s"]])
        epoch_end_median = common.median([e["epoch_end_s"] for e in timed])
        result["runs"][name] = {
            "label": labels[name],
            "slices_per_s_median": common.median([e["slices_per_s"] for e in timed]),
            # less sensitive to other load on the machine: median iteration, plus the median epoch-end time spread
            # over the epoch's timed iterations
            "robust_slices_per_s": timed_iterations
            * args.slices_per_iteration
            / (timed_iterations * iteration_median + epoch_end_median),
            "iteration_s_median": iteration_median,
            "slices_per_s": [round(e["slices_per_s"], 3) for e in timed],
            "epoch_slices_per_s_median": common.median([e["epoch_slices_per_s"] for e in timed]),
            "epoch_end_s_median": epoch_end_median,
            "gpu_utilisation_median": common.median(gpu) if gpu else None,
            "epochs": epochs,
        }


def compare_runs(args: argparse.Namespace, result: dict, samples: dict) -> None:
    """The ratios b/a and c/b (of the medians, robust, paired), the best cache and the targets' verdicts."""
    rate = {name: r["slices_per_s_median"] for name, r in result["runs"].items()}
    robust = {name: r["robust_slices_per_s"] for name, r in result["runs"].items()}
    ratios, robust_ratios, pairs = {}, {}, {}
    if "a" in rate and "b" in rate:
        pairs["b/a"] = ("b", "a")
    for mode in args.modes:
        if "b" in rate:
            pairs[f"c/b:{mode}"] = (f"c:{mode}", "b")
    for key, (n, d) in pairs.items():
        ratios[key], robust_ratios[key] = rate[n] / rate[d], robust[n] / robust[d]
    # per-round ratios of runs of the same round (a b c... in turn): a slow spell of the machine hits both sides alike
    paired = {
        key: common.median(
            [
                num["slices_per_s"] / den["slices_per_s"]
                for num, den in zip(timed_rounds(samples[n]), timed_rounds(samples[d]), strict=True)
            ]
        )
        for key, (n, d) in pairs.items()
    }
    result["ratios"], result["robust_ratios"], result["paired_ratios"] = ratios, robust_ratios, paired
    targets = {}
    if "b/a" in ratios:
        targets["b/a >= 0.95"] = ratios["b/a"] >= 0.95
    default_mode = args.config_mode if args.config_mode in args.modes else "default"
    result["config_cache_mode"] = default_mode
    if f"c/b:{default_mode}" in ratios:
        targets[f"c/b >= 0.9 (config default, cache={default_mode})"] = ratios[f"c/b:{default_mode}"] >= 0.9
    c_modes = [m for m in args.modes if f"c/b:{m}" in ratios]
    if c_modes:
        best = max(c_modes, key=lambda m: ratios[f"c/b:{m}"])
        result["best_cache"] = best
        targets[f"c/b >= 0.9 (best cache={best})"] = ratios[f"c/b:{best}"] >= 0.9
    result["targets"] = targets


def loader_bound(args: argparse.Namespace, result: dict) -> None:
    """The loader's CPU seconds per iteration against the bare training step's, into ``result["loader_profile"]``
    (with the profile and run a)."""
    if "loader_profile" not in result or "a" not in result["runs"]:
        return
    lp = result["loader_profile"]
    loader_cpu = args.batch_size * lp["total_ms"] / 1000  # loader CPU seconds per iteration
    compute_cpu = result["runs"]["a"]["iteration_s_median"] * args.threads  # CPU seconds per bare iteration
    lp["loader_cpu_s_per_iteration"], lp["compute_cpu_s_per_iteration"] = loader_cpu, compute_cpu
    # with every core busy, loading takes its CPU time from the training step: the c/b it allows on the CPU
    lp["cpu_bound_c_over_b"] = compute_cpu / (compute_cpu + loader_cpu) if args.device == "cpu" else None


def loader_text(args: argparse.Namespace, result: dict) -> str:
    """The loader's cost per transform and per iteration, as text (empty without the profile and run a)."""
    lp = result.get("loader_profile", {})
    if "loader_cpu_s_per_iteration" not in lp:
        return ""
    loader_cpu, compute_cpu = lp["loader_cpu_s_per_iteration"], lp["compute_cpu_s_per_iteration"]
    return (
        "\n\nLoader cost per volume, one thread (as in a loader worker), configs/train.json's train#preprocessing:\n\n"
        + markdown_table(
            ["transform", "random", "ms per volume"],
            [[r["transform"], r["random"], r["ms_per_volume"]] for r in lp["transforms"]],
        )
        + f"\n\nPer iteration ({args.batch_size} volumes): {loader_cpu:.2f} CPU-s of loading "
        f"({args.batch_size * lp['cacheable_ms'] / 1000:.2f} before the first random transform, i.e. cacheable) vs "
        f"{compute_cpu:.2f} CPU-s of training step (bare loop x {args.threads} threads)"
        + (
            f"; on a CPU with every core busy that bounds c/b near {lp['cpu_bound_c_over_b']:.2f}."
            if args.device == "cpu"
            else "."
        )
    )


def runs_table(args: argparse.Namespace, result: dict) -> str:
    ratios, robust_ratios, paired = result["ratios"], result["robust_ratios"], result["paired_ratios"]
    rows = []
    for name, r in result["runs"].items():
        key = "b/a" if name == "b" else f"c/b:{name[2:]}" if name.startswith("c:") else None
        row = [
            name,
            r["label"],
            r["slices_per_s_median"],
            " / ".join(f"{v:.1f}" for v in r["slices_per_s"]),
            r["robust_slices_per_s"],
            r["epoch_slices_per_s_median"],
            r["epoch_end_s_median"],
            f"{key[:3]} = {ratios[key]:.3f}" if key in ratios else "",
            f"{robust_ratios[key]:.3f}" if key in robust_ratios else "",
            f"{paired[key]:.3f}" if key in paired else "",
        ]
        if args.device == "cuda":
            row.append("" if r["gpu_utilisation_median"] is None else f"{r['gpu_utilisation_median']:.0f}")
        rows.append(row)
    headers = [
        "run",
        "what",
        "slices/s (median)",
        "per round",
        "robust slices/s",
        "whole-epoch slices/s",
        "epoch-end s",
        "ratio",
        "robust ratio",
        "paired ratio",
    ]
    if args.device == "cuda":
        headers.append("GPU util %")
    return markdown_table(headers, rows)


def report(args: argparse.Namespace, result: dict) -> None:
    s = result["settings"]
    text = (
        f"### train_throughput ({args.device}, {args.threads} threads, amp={s['amp']}, compile={args.compile}; "
        f"{args.slices_per_iteration} slices of {args.spatial_size}x{args.spatial_size} per step, {args.iters_per_epoch} "
        f"iterations per epoch, first {args.warmup} untimed, median of {args.repeats} interleaved rounds)\n\n"
        + runs_table(args, result)
        + "\n\n"
        + "\n".join(f"- {k}: {'holds' if v else 'MISSES'}" for k, v in result["targets"].items())
        + loader_text(args, result)
        + "\n\nslices/s: median over rounds of (timed slices / time from the end of the warm-up iteration to the end of "
        "the epoch-end handlers); robust: from the median iteration time plus the median epoch-end time, less "
        "sensitive to other load; paired ratio: median over rounds of the ratio of two runs of the same round; whole-epoch: "
        "from the start of the epoch (loader start-up included)."
    )
    common.finish(args, result, text)


def main(argv=None) -> dict:
    args = parse(argv)
    result = run(args)
    report(args, result)
    return result


if __name__ == "__main__":
    main()
