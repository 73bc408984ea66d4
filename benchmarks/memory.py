"""Memory: peak RSS of a short training run of the bundle on a small vs a large set of synthetic NIfTI volumes.

Each run is a fresh subprocess running ``configs/train.json`` through ``monai.bundle.ConfigWorkflow`` with the
config's default settings except ``epochs=1`` and a fixed number of iterations (``train#trainer#epoch_length``,
``validate#evaluator#epoch_length``), so both sizes do the same work and only what scales with the dataset (caching,
case lists) can differ. Reported: the training process's peak RSS (``getrusage``), its loader workers' largest
peak RSS, and the peak PSS of the whole process tree (sampled from /proc every 0.1 s; PSS splits pages the
workers share with the parent). A contrast run with ``cache=memory`` (``cache=disk`` if that is the default) shows
what caching in memory costs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402
from scripts.common.paths import BUNDLE_ROOT, TRAIN_CONFIG  # noqa: E402
from scripts.config.config_check import literal_defaults  # noqa: E402
from scripts.studies.study_files import markdown_table  # noqa: E402


# ------------------------------------------------------------------------------------------ child side
def child(spec: dict) -> None:
    import resource

    import torch

    torch.set_num_threads(spec["threads"])
    overrides = {
        "epochs": 1,
        "train#trainer#epoch_length": spec["iterations"],
        "validate#evaluator#epoch_length": spec["val_iterations"],
        "device": common.device_override(spec["device"]),
        **spec["overrides"],
    }
    started = time.perf_counter()
    workflow = common.config_workflow(
        TRAIN_CONFIG, "train", bundle_root=spec["bundle_root"], dataset_dir=spec["dataset_dir"], **overrides
    )
    workflow.run()
    workflow.finalize()
    Path(spec["result"]).write_text(
        json.dumps(
            {
                "self_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "workers_maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                "run_s": time.perf_counter() - started,
            }
        )
    )


# ----------------------------------------------------------------------------------------- parent side
def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(children.get(pid, []))
    return pids


def _rss_pss_kb(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return rss, pss


class TreeSampler(threading.Thread):
    """Peak summed RSS and PSS of a process and all its descendants, sampled every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss_kb = self.peak_pss_kb = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            sizes = [_rss_pss_kb(pid) for pid in _descendants(self.pid)]
            self.peak_rss_kb = max(self.peak_rss_kb, sum(r for r, _ in sizes))
            self.peak_pss_kb = max(self.peak_pss_kb, sum(p for _, p in sizes))
            self.stop.wait(self.interval)


def subset(root: Path, full: Path, n: int) -> Path:
    """A dataset folder holding the first ``n`` cases of ``full`` as symbolic links."""
    for sub in ("imagesTr", "labelsTr"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for path in sorted((full / sub).glob("*.nii.gz")):
            index = int(path.name.split("_")[1][:3])
            if index < n and not (root / sub / path.name).exists():
                (root / sub / path.name).symlink_to(path)
    return root


def measure(spec: dict, log: Path) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(BUNDLE_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    started = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.memory", "--child", json.dumps(spec)],
            cwd=BUNDLE_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        sampler = TreeSampler(process.pid)
        sampler.start()
        code = process.wait()
        sampler.stop.set()
        sampler.join()
    if code != 0:
        sys.stdout.write(log.read_text()[-4000:])
        raise SystemExit(f"memory: the training subprocess failed with exit code {code} (log: {log})")
    result = json.loads(Path(spec["result"]).read_text())
    return {
        "peak_rss_mb": result["self_maxrss_kb"] / 1024,
        "workers_peak_rss_mb": result["workers_maxrss_kb"] / 1024,
        "tree_peak_pss_mb": sampler.peak_pss_kb / 1024,
        "tree_peak_rss_mb": sampler.peak_rss_kb / 1024,
        "run_s": result["run_s"],
        "wall_s": time.perf_counter() - started,
    }


def parse(argv=None) -> argparse.Namespace:
    p = common.parser(
        "memory",
        __doc__.splitlines()[0],
        smoke={
            "sizes": [3, 6],
            "shape": [24, 24, 8],
            "iterations": 1,
            "val_iterations": 1,
            "repeats": 1,
            "contrast": "off",
            "spatial_size": 32,
            "slices_per_volume": 4,
            "num_workers": 0,
        },
    )
    p.add_argument(
        "--sizes", type=int, nargs=2, default=[10, 100], metavar=("SMALL", "LARGE"), help="volumes (default 10 100)"
    )
    p.add_argument("--shape", type=int, nargs=3, default=[128, 128, 64], metavar=("H", "W", "D"))
    p.add_argument("--iterations", type=int, default=4, help="training iterations per run (default 4)")
    p.add_argument("--val_iterations", type=int, default=2, help="validation volumes per run (default 2)")
    p.add_argument("--spatial_size", type=int, default=None, help="override the config's spatial_size")
    p.add_argument("--slices_per_volume", type=int, default=None, help="override the config's slices_per_volume")
    p.add_argument("--num_workers", type=int, default=None, help="override the config's num_workers")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra config override for every run (VALUE parsed as JSON if it can be), e.g. --set verify_data=false",
    )
    p.add_argument(
        "--contrast",
        choices=("on", "off"),
        default="on",
        help="also run with cache=memory, or cache=disk if memory is the default (default on)",
    )
    p.set_defaults(repeats=1)
    args = common.parse(p, argv)
    args.configs = run_settings(args)
    return args


def run_settings(args: argparse.Namespace) -> dict[str, dict]:
    """The overrides of each setting measured: the config's defaults (with the flags' and ``--set``'s overrides) and,
    with ``--contrast on``, the other cache."""
    base = {
        k: getattr(args, k)
        for k in ("spatial_size", "slices_per_volume", "num_workers")
        if getattr(args, k) is not None
    }
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            base[key] = json.loads(value)
        except json.JSONDecodeError:
            base[key] = value
    configs = {"default": base}
    if args.contrast == "on":
        other = "disk" if base.get("cache", literal_defaults()["cache"]) == "memory" else "memory"
        configs[f"cache={other}"] = {**base, "cache": other}
    return configs


def run(args: argparse.Namespace) -> dict:
    small, large = args.sizes
    result = {
        "benchmark": "memory",
        "system": common.system_info(args.device),
        "settings": {
            "device": args.device,
            "threads": args.threads,
            "sizes": args.sizes,
            "shape": args.shape,
            "iterations": args.iterations,
            "val_iterations": args.val_iterations,
            "repeats": args.repeats,
            "overrides": args.configs["default"],
        },
        "runs": {},
    }
    with common.Workdir(args.workdir, "memory") as work:
        started = time.perf_counter()
        full = common.write_dataset(work / "data", large, args.shape)
        result["settings"]["dataset_write_s"] = round(time.perf_counter() - started, 2)
        datasets = {large: full, small: subset(work / f"data-{small}", full, small)}
        for name, overrides in args.configs.items():
            for repeat in range(args.repeats):
                for n in (small, large):
                    spec = {
                        "threads": args.threads,
                        "device": args.device,
                        "iterations": args.iterations,
                        "val_iterations": args.val_iterations,
                        "overrides": overrides,
                        "dataset_dir": str(datasets[n]),
                        "bundle_root": str(work / f"bundle-{name}-{n}-{repeat}"),
                        "result": str(work / f"result-{name}-{n}-{repeat}.json"),
                    }
                    measured = measure(spec, work / f"log-{name}-{n}-{repeat}.txt")
                    result["runs"].setdefault(name, {}).setdefault(str(n), []).append(measured)
                    print(
                        f"[{name}, {n} volumes] peak RSS {measured['peak_rss_mb']:.0f} MB, "
                        f"tree PSS {measured['tree_peak_pss_mb']:.0f} MB",
                        flush=True,
                    )
    summarise(result, small, large)
    return result


def summarise(result: dict, small: int, large: int) -> None:
    """The medians of each setting and size, the growth from the small to the large set and the target's verdict."""
    result["medians"], result["growth"] = {}, {}
    for name, sizes in result["runs"].items():
        med = {n: {k: common.median([r[k] for r in runs]) for k in runs[0]} for n, runs in sizes.items()}
        result["medians"][name] = med
        result["growth"][name] = {
            k: med[str(large)][k] / med[str(small)][k] - 1.0
            for k in ("peak_rss_mb", "tree_peak_pss_mb", "workers_peak_rss_mb")
        }
    # the target is on the training process's peak RSS (getrusage: exact); the tree's PSS is sampled and moves by
    # several percent from run to run with how many loader workers happen to be alive together
    result["targets"] = {
        f"peak RSS grows < 10% from {small} to {large} volumes (default settings)": result["growth"]["default"][
            "peak_rss_mb"
        ]
        < 0.10
    }


def report(args: argparse.Namespace, result: dict) -> None:
    small, large = args.sizes
    rows = []
    for name, med in result["medians"].items():
        growth = result["growth"][name]
        for n in (small, large):
            m = med[str(n)]
            grown = (
                "" if n == small else f"{100 * growth['peak_rss_mb']:+.1f}% / {100 * growth['tree_peak_pss_mb']:+.1f}%"
            )
            rows.append([name, n, m["peak_rss_mb"], m["workers_peak_rss_mb"], m["tree_peak_pss_mb"], m["run_s"], grown])
    h, w, d = args.shape
    title = (
        f"### memory ({args.device}, {args.threads} threads; {h}x{w}x{d} volumes, {args.iterations} training "
        f"iterations + {args.val_iterations} validation volumes per run, one fresh process per run)"
    )
    headers = [
        "settings",
        "volumes",
        "peak RSS MB (training process)",
        "worker peak RSS MB",
        "peak PSS MB (process tree)",
        "run s",
        "growth RSS / PSS",
    ]
    text = (
        title
        + "\n\n"
        + markdown_table(headers, rows)
        + "\n\n"
        + "\n".join(f"- {k}: {'holds' if v else 'MISSES'}" for k, v in result["targets"].items())
    )
    common.finish(args, result, text)


def main(argv=None) -> dict:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--child":
        return child(json.loads(sys.argv[2]))
    args = parse(argv)
    result = run(args)
    report(args, result)
    return result


if __name__ == "__main__":
    main()
