"""Shared pieces of the benchmarks: flags, synthetic NIfTI data, the bundle's own workflows, timers, the report.

Nothing here re-implements the bundle: training and inference go through ``configs/*.json`` with
``monai.bundle.ConfigWorkflow`` and command-line-style overrides, exactly as ``python -m monai.bundle run`` builds them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # `python benchmarks/x.py` as well as `python -m benchmarks.x`
    sys.path.insert(0, _ROOT)

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from scripts.common.paths import BUNDLE_ROOT  # noqa: E402
from scripts.common.tool_arguments import ToolArgumentParser  # noqa: E402
from scripts.studies.study_files import write_json  # noqa: E402

RESULTS = BUNDLE_ROOT / "benchmarks" / "results"

# a value the bundle's `val_interval` never reaches in a benchmark: no validation and, since BN calibration
# shares that interval, no calibration (measured on its own by benchmarks.bn_calibration)
NO_VALIDATION = 1_000_000


# ----------------------------------------------------------------------------------------------- flags
def parser(name: str, description: str, smoke: dict) -> ToolArgumentParser:
    """The flags every benchmark has; ``smoke`` are the defaults ``--smoke`` switches to (explicit flags still win)."""
    p = ToolArgumentParser(prog=f"python -m benchmarks.{name}", description=description)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the network runs (default cpu)")
    p.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch threads in the main process (default: all cores)"
    )
    p.add_argument("--repeats", type=int, default=3, help="timed repeats; medians are reported")
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        help=f"write the results here (default {RESULTS.relative_to(BUNDLE_ROOT)}/{name}.json)",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="folder for data and runs (default: a temporary one, removed at the end)",
    )
    p.add_argument("--smoke", action="store_true", help=f"tiny sizes that finish in seconds (CI): {smoke}")
    p.set_defaults(_smoke=smoke, _name=name)
    return p


def parse(p: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    args = p.parse_args(argv)
    if args.smoke:
        p.set_defaults(**args._smoke)
        args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: torch sees no CUDA device")
    torch.set_num_threads(max(1, args.threads))
    # `timeout` (gpu.sh) and CI stop a run with SIGTERM: exit normally so temporary folders are removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.json is None:
        args.json = RESULTS / f"{args._name}.json"
    return args


class Workdir:
    """``--workdir`` or a temporary folder that is removed afterwards."""

    def __init__(self, path: Path | None, prefix: str) -> None:
        self.keep = path is not None
        self.path = Path(path) if path is not None else Path(tempfile.mkdtemp(prefix=f"sma-bench-{prefix}-"))
        self.path.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ data
def synthetic_case(shape, index: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image float32, label uint8, affine) of a brain-like scan: a bright ellipsoid with 1-3 blobs inside,
    RAS, 1 x 1 x 2 mm voxels, noise, an intensity range that differs between cases."""
    rng = np.random.default_rng(seed * 1_000_003 + index)
    x, y, z = np.ogrid[tuple(slice(0, n) for n in shape)]
    norm = [(a + 0.5) / n - 0.5 for a, n in zip((x, y, z), shape, strict=True)]
    head = (norm[0] / 0.45) ** 2 + (norm[1] / 0.45) ** 2 + (norm[2] / 0.45) ** 2 <= 1.0
    label = np.zeros(shape, dtype=bool)
    for _ in range(int(rng.integers(1, 4))):
        centre, radii = rng.uniform(-0.2, 0.2, 3), rng.uniform(0.06, 0.15, 3)
        label |= sum(((n - c) / r) ** 2 for n, c, r in zip(norm, centre, radii, strict=True)) <= 1.0
    image = (0.3 * head + 0.6 * label).astype(np.float32)
    image += head * rng.standard_normal(shape, dtype=np.float32) * np.float32(0.08)
    image = np.clip(image, 0.0, None) * np.float32(rng.choice([20.0, 255.0, 1000.0, 10000.0]))
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    return image.astype(np.float32), label.astype(np.uint8), affine


def write_dataset(root: Path, volumes: int, shape, seed: int = 0, labels: bool = True) -> Path:
    """``volumes`` synthetic scans in nnU-Net layout (``imagesTr/case_###_0000.nii.gz``, ``labelsTr/case_###.nii.gz``).
    A folder already holding this dataset (same count, shape, seed) is reused."""
    root = Path(root)
    marker = root / "synthetic_set.json"  # not dataset.json, whose "labels" name a dataset's classes
    spec = {"volumes": int(volumes), "shape": [int(s) for s in shape], "seed": int(seed), "labels": bool(labels)}
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return root
    shutil.rmtree(root / "imagesTr", ignore_errors=True)
    shutil.rmtree(root / "labelsTr", ignore_errors=True)
    (root / "imagesTr").mkdir(parents=True)
    if labels:
        (root / "labelsTr").mkdir(parents=True)
    for index in range(volumes):
        image, label, affine = synthetic_case(tuple(shape), index, seed)
        nib.save(nib.Nifti1Image(image, affine), root / "imagesTr" / f"case_{index:03d}_0000.nii.gz")
        if labels:
            nib.save(nib.Nifti1Image(label, affine), root / "labelsTr" / f"case_{index:03d}.nii.gz")
    marker.write_text(json.dumps(spec))
    return root


def volumes_for_training_set(n_train: int, val_set_size: float = 0.2) -> int:
    """How many volumes give exactly ``n_train`` training volumes under the bundle's split (scripts.data.cases.split_cases)."""
    for n in range(n_train + 1, 4 * n_train + 10):
        n_val = min(max(1, round(val_set_size * n)), n - 1)
        if n - n_val == n_train:
            return n
    raise ValueError(f"no dataset size gives {n_train} training volumes at val_set_size={val_set_size}")


class InMemoryBatches:
    """A sized, re-iterable set of ready training batches shaped like the bundle's data loader's: ``image`` and
    ``label`` ``[batch_size * slices_per_volume, 1, H, W, 1]`` (``RandSlicesByPosNegLabeld`` draws ``[1, H, W, 1]``
    slices and the collate function stacks all of them), so ``SlicePrepareBatch`` flattens them to ``[N, 1, H, W]``
    exactly as it flattens real batches. Used as ``train#dataloader`` for run (b) and, flattened, by run (a)."""

    def __init__(self, length: int, batch_size: int, slices_per_volume: int, spatial_size: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        n, s = int(batch_size) * int(slices_per_volume), int(spatial_size)
        self.batches = []
        for _ in range(int(length)):
            image = torch.randn(n, 1, s, s, 1, generator=generator)
            label = (torch.rand(n, 1, s, s, 1, generator=generator) < 0.15).float()
            self.batches.append({"image": image, "label": label})

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


# ------------------------------------------------------------------------------------------- workflows
def device_override(device: str) -> str:
    """The config's ``device`` is a ``torch.device`` (``@device.type`` is used in the config), so override it with one."""
    return f"$torch.device('{device}')"


def config_workflow(config: Path, workflow_type: str | None, **overrides):
    """``ConfigWorkflow`` of a bundle config with overrides, initialized, as ``monai.bundle run`` builds it."""
    from scripts.tools.launch import build_workflow

    workflow = build_workflow(
        {k: (str(v) if isinstance(v, Path) else v) for k, v in overrides.items()},
        files=[str(config)],
        workflow_type=workflow_type,
    )
    workflow.initialize()
    return workflow


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class EpochTimer:
    """Times each epoch of an Ignite engine in seconds: ``steady`` from the end of iteration ``warmup`` (all its
    handlers done) to the end of the last ``EPOCH_COMPLETED`` handler, so per-iteration and per-epoch handler costs
    are both in it; ``iteration_s``, the duration of each later iteration (end to end, so waiting for data counts);
    ``epoch_end``, the time after the last iteration (epoch-level handlers). Attach it after every other handler."""

    def __init__(self, warmup: int, device: str) -> None:
        self.warmup, self.device = int(warmup), device
        self.t0 = self.t_prev = self.t_last = 0.0
        self.iterations = 0
        self.iteration_s: list[float] = []
        self.epochs: list[dict] = []

    def attach(self, engine) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)

    def _iteration(self, engine) -> None:
        i = (engine.state.iteration - 1) % engine.state.epoch_length + 1
        if i < self.warmup:
            return
        sync(self.device)
        now = time.perf_counter()
        if i == self.warmup:
            self.t0, self.iteration_s = now, []
        else:
            self.iteration_s.append(now - self.t_prev)
        self.t_prev = now
        if i == engine.state.epoch_length:
            self.t_last, self.iterations = now, i

    def _epoch_completed(self, engine) -> None:
        sync(self.device)
        end = time.perf_counter()
        self.epochs.append(
            {
                "steady_s": end - self.t0,
                "timed_iterations": self.iterations - self.warmup,
                "iteration_s": list(self.iteration_s),
                "epoch_end_s": end - self.t_last,
                "end": end,
            }
        )


def run_one_epoch(trainer) -> None:
    """One more epoch of a (MONAI/Ignite) trainer: Ignite resumes a run whose ``max_epochs`` was raised."""
    trainer.state.max_epochs = trainer.state.epoch + 1
    trainer.run()


# ------------------------------------------------------------------------------------------------- GPU
class GpuUtilisation:
    """Mean GPU utilisation (%) sampled by ``nvidia-smi`` every 100 ms while the ``with`` block runs; ``None`` on
    the CPU or without nvidia-smi."""

    def __init__(self, device: str) -> None:
        self.enabled = device == "cuda" and shutil.which("nvidia-smi") is not None
        self.mean: float | None = None
        self._process = None

    def __enter__(self):
        if self.enabled:
            index = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0] or "0"
            self._process = subprocess.Popen(
                [
                    "nvidia-smi",
                    "-i",
                    index,
                    "--query-gpu=utilization.gpu",
                    "--format=csv,noheader,nounits",
                    "-lms",
                    "100",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        return self

    def __exit__(self, *exc) -> None:
        if self._process is None:
            return
        self._process.terminate()
        out, _ = self._process.communicate(timeout=10)
        values = [float(v) for v in out.split() if v.replace(".", "", 1).isdigit()]
        self.mean = statistics.fmean(values) if values else None


# ----------------------------------------------------------------------------------------- reporting
def median(values) -> float:
    return float(statistics.median(values)) if values else float("nan")


def system_info(device: str) -> dict:
    import monai

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "device": device,
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def finish(args: argparse.Namespace, result: dict, text: str) -> None:
    """Print the Markdown ``text`` (last, after any log output) and write ``result`` as JSON (NaN as null)."""
    result.setdefault("system", {})["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    result["command"] = " ".join([f"python -m benchmarks.{args._name}", *sys.argv[1:]])
    write_json(args.json, result, default=str)
    sys.stdout.flush()
    print("\n" + text + f"\n\nJSON: {args.json}", flush=True)
