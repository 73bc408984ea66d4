"""2D, 2.5D and 3D: a short training run with every harness feature, a resume, and inference on the scan's grid with
inference.json alone (the settings travel with the model)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigParser, ConfigWorkflow
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import (
    BUNDLE,
    EVALUATE_CONFIG,
    FAST,
    INFERENCE_CONFIG,
    LOGGING,
    METADATA,
    TRAIN_CONFIG,
    affine_for,
    blob_volume,
    checkpoint_dir,
    write_dataset,
)

MODES = {
    "2D": {"train": None, "settings": {"intensity_normalisation": "percentile", "slice_axis": "axial"}},
    "2.5D": {"train": "configs/train_2.5d.json", "settings": {"context_slices": 1}},
    "3D": {"train": "configs/train_3d.json", "settings": {"patch_size": [32, 32, 16]}},
}


def configs(base: str, layer: str | None) -> list[str]:
    return [base] + ([str(BUNDLE / layer)] if layer else [])


def train(root: Path, data: Path, mode: str, stop_after: int | None = None, **overrides) -> ConfigWorkflow:
    workflow = ConfigWorkflow(
        config_file=configs(TRAIN_CONFIG, MODES[mode]["train"]),
        meta_file=METADATA,
        logging_file=LOGGING,
        workflow_type="train",
        bundle_root=str(root),
        dataset_dir=str(data),
        **{**FAST, **MODES[mode]["settings"], **overrides},
    )
    workflow.initialize()
    assert not workflow.check_properties()
    if stop_after is not None:  # a killed job: stop once that epoch's checkpoints are written
        workflow.trainer.add_event_handler(Events.EPOCH_COMPLETED(once=stop_after), lambda engine: engine.terminate())
    workflow.run()
    workflow.finalize()
    return workflow


@pytest.mark.parametrize("mode", sorted(MODES))
def test_mode_trains_resumes_and_predicts_on_the_scans_grid(tmp_path, mode):
    data = write_dataset(tmp_path / "data")
    first = train(tmp_path, data, mode, epochs=2, stop_after=1)
    assert first.parser.get_parsed_content("unet_dimensions") == mode
    ckpts = checkpoint_dir(tmp_path / "runs")
    assert {"best.pth", "last.pth"} <= {p.name for p in ckpts.iterdir()}
    val_log = next((tmp_path / "runs" / "SMALabeller").glob("*-val_cls-exp"))
    events = EventAccumulator(str(val_log), size_guidance={"images": 0})
    events.Reload()
    assert "validation/most_foreground" in events.Tags()["images"]

    resumed = train(tmp_path, data, mode, epochs=2, resume="true")
    assert resumed.trainer.state.epoch == 2
    assert torch.load(ckpts / "last.pth", weights_only=True)["epoch"] == 2

    # a non-RAS, anisotropic scan: the mask comes back with its shape and affine
    image, _ = blob_volume((30, 26, 11), 500.0, seed=9)
    affine = affine_for((0.7, 1.3, 3.0), (0, 2, 1))  # coronal-like, first axis flipped
    scans = tmp_path / "scans"
    scans.mkdir()
    nib.save(nib.Nifti1Image(image, affine), scans / "scan_0000.nii.gz")

    def infer(output: str, **retyped) -> np.ndarray:
        workflow = ConfigWorkflow(
            config_file=INFERENCE_CONFIG,
            meta_file=METADATA,
            logging_file=LOGGING,
            workflow_type="infer",
            bundle_root=str(tmp_path),
            dataset_dir=str(scans),
            output_dir=str(tmp_path / output),
            num_workers=0,
            save_probabilities="true",
            **retyped,
        )
        workflow.initialize()
        workflow.run()
        workflow.finalize()
        mask = nib.load(tmp_path / output / "scan.nii.gz")
        assert mask.shape == image.shape and np.allclose(mask.affine, affine)
        assert set(np.unique(np.asarray(mask.dataobj))) <= {0, 1} and mask.get_data_dtype() == np.uint8
        return np.asarray(nib.load(tmp_path / output / "probabilities" / "scan.nii.gz").dataobj)

    # inference.json alone reads the mode and sizes saved with models/model.pt; retyping them changes nothing
    alone = infer("alone")
    retyped = infer("retyped", spatial_size=FAST["spatial_size"], **MODES[mode]["settings"])
    assert np.array_equal(alone, retyped) and alone.std() > 0
    assert json.loads((tmp_path / "models" / "model.json").read_text())["unet_dimensions"] == mode
    # an override that contradicts the model is refused before any scan is read
    with pytest.raises(SystemExit, match=r"--spatial_size 48 contradicts the model, trained with spatial_size=32"):
        infer("wrong", spatial_size=48)
    assert not (tmp_path / "wrong").exists()

    # evaluation layered on train.json alone scores the validation case with the model's own settings
    evaluation = ConfigWorkflow(
        config_file=[TRAIN_CONFIG, EVALUATE_CONFIG],
        meta_file=METADATA,
        logging_file=LOGGING,
        workflow_type="infer",
        bundle_root=str(tmp_path),
        dataset_dir=str(data),
        num_workers=0,
    )
    evaluation.initialize()
    evaluation.run()
    evaluation.finalize()
    summary = json.loads(next((tmp_path / "runs").rglob("summary.json")).read_text())
    assert summary["cases"] == 1 and 0.0 <= summary["metrics"]["dice"]["mean"] <= 1.0, summary


def test_2_5d_network_sees_the_neighbours_as_channels(tmp_path):
    parser = ConfigParser()
    parser.read_config(configs(TRAIN_CONFIG, MODES["2.5D"]["train"]))
    parser["context_slices"] = 3
    network = parser.get_parsed_content("network_def")
    assert network(torch.zeros(2, 7, 32, 32)).shape == (2, 1, 32, 32)


def test_mode_needs_its_config_file(tmp_path, dataset):
    from tests.conftest import cli_args, run_bundle

    result = run_bundle(
        [
            "--config_file",
            TRAIN_CONFIG,
            "--bundle_root",
            str(tmp_path),
            "--dataset_dir",
            str(dataset),
            *cli_args({**FAST, "unet_dimensions": "2.5D"}),
        ]
    )
    assert result.returncode == 1
    assert "configs/train_2.5d.json" in result.stdout + result.stderr
