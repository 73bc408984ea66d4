"""Shared fixtures: NIfTI datasets written to a temp dir, and ways to run the bundle."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

BUNDLE = Path(__file__).resolve().parents[1]
TRAIN_CONFIG = str(BUNDLE / "configs" / "train.json")
METADATA = str(BUNDLE / "configs" / "metadata.json")
LOGGING = str(BUNDLE / "configs" / "logging.conf")

# small sizes so a real epoch takes seconds on two CPU cores
FAST = {
    "epochs": 1,
    "iterations_per_epoch": 2,
    "batch_size": 2,
    "num_workers": 0,
    "spatial_size": 32,
    "slices_per_volume": 4,
    "slice_batch": 16,
}

# (shape, spacing, voxel-axis -> world-axis, intensity max): mixed shapes, spacings, orientations and ranges
VOLUMES = [
    ((40, 36, 12), (1.0, 1.0, 3.0), (0, 1, 2), 20.0),
    ((32, 44, 16), (0.8, 0.8, 2.0), (0, 2, 1), 10000.0),
    ((48, 40, 10), (1.2, 0.9, 2.5), (1, 0, 2), 255.0),
    ((36, 36, 14), (1.0, 1.0, 1.0), (0, 1, 2), 4000.0),
    ((44, 30, 12), (1.5, 1.5, 3.0), (2, 1, 0), 20.0),
]


def affine_for(spacing, axes, flip=True) -> np.ndarray:
    affine = np.zeros((4, 4))
    for voxel_axis, world_axis in enumerate(axes):
        affine[world_axis, voxel_axis] = spacing[voxel_axis] * (-1.0 if flip and voxel_axis == 0 else 1.0)
    affine[:3, 3] = (10.0, -20.0, 5.0)
    affine[3, 3] = 1.0
    return affine


def blob_volume(shape, scale, seed) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"), -1)
    centre = rng.uniform(-0.3, 0.3, 3)
    label = (((grid - centre) / np.array([0.4, 0.35, 0.6])) ** 2).sum(-1) <= 1
    image = (0.3 + 0.7 * label + rng.normal(0, 0.05, shape)).clip(0) * scale
    return image.astype(np.float32), label.astype(np.uint8)


def write_dataset(root: Path, volumes=VOLUMES, channel_suffix: str = "_0000", volume=blob_volume) -> Path:
    """``volumes`` in nnU-Net layout, each image and label made by ``volume(shape, scale, seed)``."""
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    for index, (shape, spacing, axes, scale) in enumerate(volumes):
        image, label = volume(shape, scale, index)
        affine = affine_for(spacing, axes)
        nib.save(nib.Nifti1Image(image, affine), root / "imagesTr" / f"case_{index:02d}{channel_suffix}.nii.gz")
        nib.save(nib.Nifti1Image(label, affine), root / "labelsTr" / f"case_{index:02d}.nii.gz")
    return root


@pytest.fixture
def dataset(tmp_path) -> Path:
    return write_dataset(tmp_path / "data")


def cli_args(overrides: dict) -> list[str]:
    args = []
    for key, value in overrides.items():
        args += [f"--{key}", str(value)]
    return args


def run_bundle(args: list[str], cwd=BUNDLE, timeout=600, env=None) -> subprocess.CompletedProcess:
    """``python -m monai.bundle run ...`` in a real subprocess, from the bundle root."""
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--meta_file", METADATA, "--logging_file", LOGGING, *args]
    full_env = {**os.environ, "PYTHONPATH": str(BUNDLE), **(env or {})}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)


# a label map of three classes, on purpose not numbered 0, 1, 2
CLASS_VALUES = {"background": 0, "shell": 2, "core": 5}


def class_volume(shape, scale, seed) -> tuple[np.ndarray, np.ndarray]:
    """A blob with a core: background, shell and core each with its own brightness; labels ``CLASS_VALUES``."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"), -1)
    radius = (((grid - rng.uniform(-0.3, 0.3, 3)) / np.array([0.45, 0.4, 0.65])) ** 2).sum(-1)
    shell, core = (radius <= 1) & (radius > 0.3), radius <= 0.3
    label = np.select([core, shell], [CLASS_VALUES["core"], CLASS_VALUES["shell"]], CLASS_VALUES["background"])
    image = (0.2 + 0.4 * shell + 0.8 * core + rng.normal(0, 0.05, shape)).clip(0) * scale
    return image.astype(np.float32), label.astype(np.uint8)


def write_class_dataset(root: Path, dataset_json: bool = True, volumes=VOLUMES) -> Path:
    """`VOLUMES` as three-class label maps in nnU-Net layout, with an nnU-Net v2 ``dataset.json`` naming the classes
    (or without one)."""
    write_dataset(root, volumes, volume=class_volume)
    if dataset_json:
        description = {"channel_names": {"0": "MRI"}, "labels": CLASS_VALUES, "numTraining": len(volumes)}
        (root / "dataset.json").write_text(json.dumps({**description, "file_ending": ".nii.gz"}, indent=2))
    return root


def make_workflow(bundle_root: Path, dataset_dir: Path, **overrides):
    """An initialized ``ConfigWorkflow`` of configs/train.json with the FAST settings and ``overrides``."""
    from monai.bundle import ConfigWorkflow

    settings = {**FAST, **overrides}
    workflow = ConfigWorkflow(
        config_file=TRAIN_CONFIG,
        meta_file=METADATA,
        logging_file=LOGGING,
        workflow_type="train",
        bundle_root=str(bundle_root),
        dataset_dir=str(dataset_dir),
        **settings,
    )
    workflow.initialize()
    return workflow


def checkpoint_dir(output_dir: Path, tb_prefix: str = "SMALabeller") -> Path:
    runs = [p for p in (Path(output_dir) / tb_prefix).iterdir() if (p / "checkpoints").is_dir()]
    assert len(runs) == 1, runs
    return runs[0] / "checkpoints"


# --- inference, evaluation and export --------------------------------------------------------------------------
INFERENCE_CONFIG = str(BUNDLE / "configs" / "inference.json")
EVALUATE_CONFIG = str(BUNDLE / "configs" / "evaluate.json")

# one BLAS/OpenMP thread: on a 2-core machine with other work running, 2 threads per process make convolutions
# up to 100x slower (threads spin waiting for a busy core)
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# the short training of `trained_bundle`, and the settings inference and evaluation must share with it
TRAINED = {"spatial_size": 32, "slice_batch": 16, "num_workers": 0}
SHORT_TRAINING = {
    **TRAINED,
    "epochs": 40,
    "iterations_per_epoch": 2,
    "batch_size": 2,
    "slices_per_volume": 8,
    "augmentations": "false",
    "lr": 0.003,
    "max_lr": 0.03,
    "amp": "false",
    "device": "cpu",
}


def bundle_run(config_file: str) -> list[str]:
    """``monai.bundle run`` of ``config_file`` with the bundle's metadata and logging: what ``run_module`` takes first."""
    return ["monai.bundle", "run", "--config_file", config_file, "--meta_file", METADATA, "--logging_file", LOGGING]


def run_module(args: list[str], cwd=BUNDLE, timeout=600, env=None) -> subprocess.CompletedProcess:
    """``python -m <args>`` in a real subprocess from the bundle root, with one thread per process."""
    full_env = {**os.environ, "PYTHONPATH": str(BUNDLE), **ONE_THREAD_ENV, **(env or {})}
    cmd = [sys.executable, "-m", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)


def drop_handlers_on_closed_streams() -> int:
    """Remove every logging handler whose stream is closed; the number removed. ``configs/logging.conf`` binds its
    handler to ``sys.stdout`` as it is when a workflow reads it, which in a test using ``capsys`` is that test's capture,
    closed when the test ends: each later test of the same worker would then print ``--- Logging error ---`` with a
    traceback for every line logged."""
    loggers = [
        logging.getLogger(),
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    removed = 0
    for logger in loggers:
        for handler in list(logger.handlers):
            if getattr(getattr(handler, "stream", None), "closed", False):
                logger.removeHandler(handler)
                removed += 1
    return removed


@pytest.fixture(autouse=True)
def no_log_handler_outlives_its_stream():
    """After each test (and after its ``capsys`` is closed): ``drop_handlers_on_closed_streams``."""
    yield
    drop_handlers_on_closed_streams()


@pytest.fixture
def one_torch_thread():
    """In-process runs use one torch thread (see ``ONE_THREAD_ENV``); restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory):
    """Train once per session on the `VOLUMES` blobs (about 45 s on 2 cores; 40 epochs, as 20-30 left the coronal test
    scan at Dice 0.89 < 0.9 in some versions); ``root/models/model.pt`` is the result."""
    root = tmp_path_factory.mktemp("trained")
    data = write_dataset(root / "data")
    result = run_bundle(
        [
            "--config_file",
            TRAIN_CONFIG,
            "--bundle_root",
            str(root),
            "--dataset_dir",
            str(data),
            *cli_args(SHORT_TRAINING),
        ],
        env=ONE_THREAD_ENV,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    model = root / "models" / "model.pt"
    assert model.is_file()
    return {"root": root, "data": data, "model": model}
