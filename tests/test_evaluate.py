"""configs/evaluate.json over train.json: per-case Dice, HD95, ASD and volumes, on hand-made and trained cases."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, ConfigWorkflow

from scripts.data.cases import DatasetError
from scripts.data.eval_cases import select_cases
from scripts.handlers.evaluation_report import summarise
from scripts.metrics.surface_metrics import case_metrics
from tests.conftest import EVALUATE_CONFIG, LOGGING, METADATA, TRAIN_CONFIG, TRAINED, bundle_run, cli_args, run_module

COLUMNS = ["case", "dice", "hd95_mm", "asd_mm", "pred_volume_ml", "true_volume_ml", "fp_volume_ml", "fn_volume_ml"]
SPACING = (0.8, 1.2, 2.5)  # anisotropic, so a distance in voxels is not a distance in mm


def planes(shape=(8, 8, 10), slices=(2,)) -> np.ndarray:
    """Full-thickness-1 planes at the given z: every voxel is a surface voxel, so distances are known exactly."""
    volume = np.zeros(shape, np.uint8)
    for z in slices:
        volume[1:-1, 1:-1, z] = 1
    return volume


def read_csv(path: Path) -> tuple[list[str], dict[str, dict[str, float]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = {row["case"]: {k: float(v) for k, v in row.items() if k != "case"} for row in reader}
    return reader.fieldnames, rows


# --- the metrics ------------------------------------------------------------------------------------------------
def test_hand_made_case_has_the_known_dice_hd95_asd_and_volumes():
    """Label: plane z=2 (36 voxels). Prediction: planes z=2 and z=5. Half the predicted surface is 3 slices
    (7.5 mm) from the label, the rest and all of the label's surface at 0 mm:
    Dice = 2*36/(72+36) = 2/3, HD95 = 7.5 mm, ASD = (36*7.5)/(72+36) = 2.5 mm."""
    label, pred = planes(), planes(slices=(2, 5))
    affine = np.diag([*SPACING, 1.0])
    voxel_ml = np.prod(SPACING) / 1000
    row = case_metrics(pred[None], label[None], affine)
    assert row == pytest.approx(
        {
            "dice": 2 / 3,
            "hd95_mm": 7.5,
            "asd_mm": 2.5,
            "pred_volume_ml": 72 * voxel_ml,
            "true_volume_ml": 36 * voxel_ml,
            "fp_volume_ml": 36 * voxel_ml,
            "fn_volume_ml": 0.0,
        }
    )
    # the distances follow the spacing of the slice axis, not the in-plane ones
    assert case_metrics(pred, label, np.diag([5.0, 5.0, 1.0, 1.0]))["hd95_mm"] == pytest.approx(3.0)
    # a rotated/permuted affine keeps the spacing of each voxel axis
    permuted = np.array([[0, 0, 2.5, 0], [0.8, 0, 0, 0], [0, -1.2, 0, 0], [0, 0, 0, 1.0]])
    assert case_metrics(pred, label, permuted)["hd95_mm"] == pytest.approx(7.5)

    empty = np.zeros_like(label)
    missed = case_metrics(empty, label, affine)
    assert missed["dice"] == 0 and math.isnan(missed["hd95_mm"]) and math.isnan(missed["asd_mm"])
    assert case_metrics(empty, empty, affine) == {
        "dice": 1.0,
        "hd95_mm": 0.0,
        "asd_mm": 0.0,
        "pred_volume_ml": 0.0,
        "true_volume_ml": 0.0,
        "fp_volume_ml": 0.0,
        "fn_volume_ml": 0.0,
    }
    with pytest.raises(ValueError, match="not on the same grid"):
        case_metrics(np.zeros((8, 8, 9)), label, affine)


def test_summary_skips_undefined_values_and_counts_the_rest():
    rows = [{"dice": 1.0, "hd95_mm": 2.0}, {"dice": 0.0, "hd95_mm": math.nan}, {"dice": 0.5, "hd95_mm": 4.0}]
    summary = summarise(rows, columns=("dice", "hd95_mm"))
    assert summary["dice"] == pytest.approx({"mean": 0.5, "std": np.std([1, 0, 0.5]), "median": 0.5, "n": 3})
    assert summary["hd95_mm"] == pytest.approx({"mean": 3.0, "std": 1.0, "median": 3.0, "n": 2})
    undefined = summarise([{"dice": math.nan}], columns=("dice",))["dice"]
    assert undefined == {"mean": None, "std": None, "median": None, "n": 0}


def test_eval_split_is_trainings_validation_split_or_everything():
    cases = [{"case": f"c{i}"} for i in range(10)]
    merged = ConfigParser()
    merged.read_config([TRAIN_CONFIG, EVALUATE_CONFIG])
    assert merged["validate"]["dataset"]["data"].startswith("$scripts.data.eval_cases.select_cases(@cases,")
    from scripts.data.cases import split_cases

    assert select_cases(cases, "validation", 0.2, 42) == split_cases(cases, 0.2, 42)[1]
    assert select_cases(cases, "all", 0.2, 42) == cases
    with pytest.raises(DatasetError, match="eval_split='test': use one of validation, all"):
        select_cases(cases, "test", 0.2, 42)


def test_evaluate_json_overrides_train_json_and_does_not_copy_it():
    train, evaluate = ConfigParser.load_config_file(TRAIN_CONFIG), ConfigParser.load_config_file(EVALUATE_CONFIG)
    for copied in ("network_def", "train", "validate", "cases", "split", "dataset_dir"):
        assert copied not in evaluate
    # the settings the model expects come from the model, not from train.json's defaults
    for key in train["model_settings"]:
        assert evaluate[key] == f"$@trained_settings['{key}']", key
    for key in (k for k in evaluate if "#" in k):  # every nested override replaces (or extends, +) what exists
        node, *parts, last = [train, *key.lstrip("+").split("#")]
        for part in parts:
            assert part in node, key
            node = node[part]
        assert last in node or "_target_" in node, key  # or gives a component one more argument
    assert evaluate["run"] == ["$@validate#evaluator.run()"] and evaluate["finalize"] == []
    assert not any("checkpoints" in expr or "trainer" in expr for expr in evaluate["initialize"])


# --- the hand-made case through the whole evaluation config --------------------------------------------------------
class Threshold(torch.nn.Module):
    """Stands in for the network: logit +10 where the z-scored image is above its mean, -10 elsewhere."""

    def forward(self, x):
        return torch.where(x > 0, 10.0, -10.0)


def test_evaluation_writes_the_known_values_for_hand_made_cases(tmp_path, one_torch_thread):
    """Two cases whose prediction is fixed by the image: `planes` (as above, Dice 2/3, HD95 7.5 mm) and `exact`
    (prediction == label). RAS and in-plane 16 x 16 at spatial_size 16, so fitting and inverting are exact."""
    data = tmp_path / "data"
    (data / "imagesTr").mkdir(parents=True)
    (data / "labelsTr").mkdir()
    affine = np.diag([1.0, 1.0, 2.5, 1.0])
    shape = (16, 16, 8)
    for case, label, predicted in [
        ("exact", planes(shape, (3, 4)), planes(shape, (3, 4))),
        ("planes", planes(shape, (2,)), planes(shape, (2, 5))),
    ]:
        image = (1.0 + 2.0 * predicted).astype(np.float32)  # nonzero everywhere, bright where predicted
        nib.save(nib.Nifti1Image(image, affine), data / "imagesTr" / f"{case}_0000.nii.gz")
        nib.save(nib.Nifti1Image(label, affine), data / "labelsTr" / f"{case}.nii.gz")
    out = tmp_path / "eval"
    workflow = ConfigWorkflow(
        config_file=[TRAIN_CONFIG, EVALUATE_CONFIG],
        meta_file=METADATA,
        logging_file=LOGGING,
        bundle_root=str(tmp_path),
        dataset_dir=str(data),
        eval_split="all",
        eval_output_dir=str(out),
        network=Threshold(),
        **{"validate#handlers#0#_disabled_": True},  # no weights to load: the model zoo's way to skip the loader
        spatial_size=16,
        num_workers=0,
        intensity_normalisation="zscore_nonzero",  # Threshold keys on "above the mean of all (nonzero) voxels"
        inference_planes=["auto"],
        postprocessing_lcc=False,  # one plane, fitted exactly; both predicted slabs kept
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()

    columns, rows = read_csv(out / "metrics.csv")
    assert columns == COLUMNS
    voxel_ml = 2.5 / 1000
    plane = 14 * 14
    one, two = plane * voxel_ml, 2 * plane * voxel_ml
    assert rows["planes"] == pytest.approx(
        {
            "dice": 2 / 3,
            "hd95_mm": 7.5,
            "asd_mm": 2.5,
            "pred_volume_ml": two,
            "true_volume_ml": one,
            "fp_volume_ml": one,
            "fn_volume_ml": 0.0,
        }
    )
    assert rows["exact"] == pytest.approx(
        {
            "dice": 1.0,
            "hd95_mm": 0.0,
            "asd_mm": 0.0,
            "pred_volume_ml": two,
            "true_volume_ml": two,
            "fp_volume_ml": 0.0,
            "fn_volume_ml": 0.0,
        }
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cases"] == 2
    assert summary["metrics"]["dice"] == pytest.approx({"mean": 5 / 6, "std": 1 / 6, "median": 5 / 6, "n": 2})
    assert summary["metrics"]["hd95_mm"] == pytest.approx({"mean": 3.75, "std": 3.75, "median": 3.75, "n": 2})
    # MONAI's own mean Dice of the same evaluator agrees with the CSV
    evaluator = workflow.parser.get_parsed_content("validate#evaluator")
    assert evaluator.state.metrics["val_mean_dice"] == pytest.approx(5 / 6, abs=1e-6)
    assert not (tmp_path / "models").exists() and not (tmp_path / "runs").exists()  # nothing trained or saved


# --- a trained model, through the CLI as documented ----------------------------------------------------------------
def test_cli_scores_the_validation_split_of_a_trained_model(trained_bundle, tmp_path):
    model = trained_bundle["model"]
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    output_dir = tmp_path / "runs"
    result = run_module(
        [
            *bundle_run(f"['{TRAIN_CONFIG}','{EVALUATE_CONFIG}']"),
            "--bundle_root",
            str(trained_bundle["root"]),
            "--dataset_dir",
            str(trained_bundle["data"]),
            "--output_dir",
            str(output_dir),
            *cli_args(TRAINED),
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]

    parser = ConfigParser()
    parser.read_config(TRAIN_CONFIG)
    parser.update({"dataset_dir": str(trained_bundle["data"]), "bundle_root": str(trained_bundle["root"])})
    validation = parser.get_parsed_content("split")[1]
    out = output_dir / "SMALabeller" / "eval"
    columns, rows = read_csv(out / "metrics.csv")
    assert columns == COLUMNS
    assert sorted(rows) == sorted(case["case"] for case in validation)
    for case in validation:
        label = nib.load(case["label"])
        true_ml = float((np.asarray(label.dataobj) > 0).sum()) * abs(np.linalg.det(label.affine[:3, :3])) / 1000
        row = rows[case["case"]]
        assert row["true_volume_ml"] == pytest.approx(true_ml, rel=1e-6)
        # (ASD can exceed HD95 when over 95 % of the surface is exact: both are 0-0.02 mm here)
        assert row["dice"] >= 0.9 and 0 <= row["hd95_mm"] < 5 and 0 <= row["asd_mm"] < 5
        assert row["pred_volume_ml"] == pytest.approx(true_ml, rel=0.2)
        print(f"{case['case']}: {row}")
    summary = json.loads((out / "summary.json").read_text())
    dice = [rows[c]["dice"] for c in rows]
    assert summary["metrics"]["dice"] == pytest.approx(
        {"mean": np.mean(dice), "std": np.std(dice), "median": np.median(dice), "n": len(dice)}
    )
    log = result.stdout
    assert re.search(rf"dice over {len(dice)} case\(s\): mean {summary['metrics']['dice']['mean']:.4f}", log)
    for case in rows:
        assert re.search(rf"{case}: dice {rows[case]['dice']:.4f}, hd95_mm {rows[case]['hd95_mm']:.4f}", log)
    assert "val_mean_dice" in log
    # evaluation neither trains nor overwrites the model
    assert hashlib.sha256(model.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in (output_dir / "SMALabeller").iterdir()) == ["eval"]
