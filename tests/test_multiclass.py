"""Label maps of several classes end to end: a three-class dataset (values 0, 2, 5; with and without dataset.json)
trains, resumes, evaluates and predicts in 2D, 2.5D and 3D, the classes travelling with the model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow

from tests.conftest import (
    CLASS_VALUES,
    EVALUATE_CONFIG,
    INFERENCE_CONFIG,
    LOGGING,
    METADATA,
    TRAIN_CONFIG,
    affine_for,
    checkpoint_dir,
    class_volume,
    write_class_dataset,
)
from tests.test_modes import MODES, train


def run(config_file, root: Path, **settings) -> ConfigWorkflow:
    workflow = ConfigWorkflow(
        config_file=config_file,
        meta_file=METADATA,
        logging_file=LOGGING,
        workflow_type="infer",
        bundle_root=str(root),
        num_workers=0,
        **settings,
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    return workflow


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_three_classes_train_resume_evaluate_and_predict(tmp_path, mode):
    data = write_class_dataset(tmp_path / "data")
    first = train(tmp_path, data, mode, epochs=2, stop_after=1)
    assert first.parser.get_parsed_content("label_classes") == CLASS_VALUES
    assert first.parser.get_parsed_content("network_args")["out_channels"] == 3  # a softmax channel per class
    resumed = train(tmp_path, data, mode, epochs=2, resume="true")
    assert resumed.trainer.state.epoch == 2
    assert torch.load(checkpoint_dir(tmp_path / "runs") / "last.pth", weights_only=True)["epoch"] == 2
    model = json.loads((tmp_path / "models" / "model.json").read_text())
    assert model["label_classes"] == CLASS_VALUES and model["network_args"]["out_channels"] == 3
    # each class's validation Dice beside the mean
    assert {"val_dice_shell", "val_dice_core", "val_mean_dice"} <= set(resumed.evaluator.state.metrics)

    # inference.json alone: a label map with the dataset's values on the scan's own (non-RAS) grid
    image, label = class_volume((30, 26, 11), 500.0, seed=9)
    affine = affine_for((0.7, 1.3, 3.0), (0, 2, 1))
    scans = tmp_path / "scans"
    scans.mkdir()
    nib.save(nib.Nifti1Image(image, affine), scans / "scan_0000.nii.gz")
    outputs = {"output_dir": str(tmp_path / "out"), "save_probabilities": "true", "postprocessing_lcc": "false"}
    run(INFERENCE_CONFIG, tmp_path, dataset_dir=str(scans), **outputs)
    labels = nib.load(tmp_path / "out" / "scan.nii.gz")
    assert labels.shape == image.shape and np.allclose(labels.affine, affine) and labels.get_data_dtype() == np.uint8
    assert set(np.unique(np.asarray(labels.dataobj))) <= set(CLASS_VALUES.values())
    probabilities = np.asarray(nib.load(tmp_path / "out" / "probabilities" / "scan.nii.gz").dataobj)
    assert probabilities.shape == (*image.shape, 3) and np.allclose(probabilities.sum(-1), 1.0, atol=1e-4)
    # the label map is the most probable class's value
    expected = np.array(sorted(CLASS_VALUES.values()))[probabilities.argmax(-1)]
    assert np.array_equal(np.asarray(labels.dataobj), expected)

    # evaluation: a row per case and class, the summary per class
    run([TRAIN_CONFIG, EVALUATE_CONFIG], tmp_path, dataset_dir=str(data), eval_split="all")
    report = next((tmp_path / "runs").rglob("metrics.csv"))
    rows = list(csv.DictReader(report.open()))
    assert [(r["case"], r["class"]) for r in rows[:2]] == [("case_00", "shell"), ("case_00", "core")]
    assert len(rows) == 10 and {"dice", "hd95_mm", "fp_volume_ml", "fn_volume_ml"} <= set(rows[0])
    summary = json.loads((report.parent / "summary.json").read_text())
    assert summary["cases"] == 5 and set(summary["classes"]) == {"shell", "core"}

    # a label value the model has no class for is refused, naming the file, before anything is scored
    relabelled = tmp_path / "relabelled"
    for folder in ("imagesTr", "labelsTr"):
        (relabelled / folder).mkdir(parents=True)
        for path in (data / folder).iterdir():
            (relabelled / folder / path.name).symlink_to(path)
    odd = relabelled / "labelsTr" / "case_03.nii.gz"
    odd.unlink()
    kept = nib.load(data / "labelsTr" / "case_03.nii.gz")
    wrong = np.asarray(kept.dataobj).copy()
    wrong[wrong == CLASS_VALUES["core"]] = 7
    nib.save(nib.Nifti1Image(wrong, kept.affine), odd)
    (report.parent / "metrics.csv").unlink()
    with pytest.raises(SystemExit, match=r"case_03\.nii\.gz: label value\(s\) \[7\] are none of the model's classes"):
        run([TRAIN_CONFIG, EVALUATE_CONFIG], tmp_path, dataset_dir=str(relabelled), eval_split="all")
    assert not (report.parent / "metrics.csv").exists()


def test_a_short_training_learns_each_class(tmp_path):
    """Not only the plumbing: 80 steps on the three-class blobs separate both foreground classes from each other."""
    data = write_class_dataset(tmp_path / "data")
    settings = {"epochs": 40, "slices_per_volume": 8, "augmentations": "false", "lr": 0.003, "max_lr": 0.03}
    train(tmp_path, data, "2D", **settings)
    image, label = class_volume((36, 40, 12), 300.0, seed=11)
    affine = affine_for((1.0, 1.0, 3.0), (0, 1, 2))
    scans = tmp_path / "scans"
    scans.mkdir()
    nib.save(nib.Nifti1Image(image, affine), scans / "scan_0000.nii.gz")
    run(INFERENCE_CONFIG, tmp_path, dataset_dir=str(scans), output_dir=str(tmp_path / "out"))
    predicted = np.asarray(nib.load(tmp_path / "out" / "scan.nii.gz").dataobj)
    for name in ("shell", "core"):
        value = CLASS_VALUES[name]
        assert dice(predicted == value, label == value) > 0.8, name


def test_without_dataset_json_the_classes_are_the_values_found(tmp_path):
    data = write_class_dataset(tmp_path / "data", dataset_json=False)
    train(tmp_path, data, "2D", epochs=1)
    model = json.loads((tmp_path / "models" / "model.json").read_text())
    assert model["label_classes"] == {"background": 0, "class 2": 2, "class 5": 5}


def test_a_value_dataset_json_does_not_name_is_refused_before_training(tmp_path):
    data = write_class_dataset(tmp_path / "data")
    description = json.loads((data / "dataset.json").read_text())
    del description["labels"]["core"]
    (data / "dataset.json").write_text(json.dumps(description))
    with pytest.raises(SystemExit, match=r"dataset.json: the labels hold value\(s\) \[5\] that its \"labels\" do not"):
        train(tmp_path, data, "2D", epochs=1)
    assert not (tmp_path / "models").exists()
