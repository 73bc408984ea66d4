"""scripts.studies.mask_edge_profile on a head phantom: masks drawn by two rules must show on which side of the CSF they end."""

import json
import subprocess
import sys

import nibabel as nib
import numpy as np

from tests.conftest import BUNDLE

# concentric shells, radii in mm: white matter, grey matter, CSF, skull; air outside
WHITE, GREY, CSF, SKULL = 100.0, 60.0, 20.0, 150.0


def write_phantom(root):
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    (root / "predicted").mkdir()
    grid = np.indices((80, 80, 80)).astype(np.float32) - 39.5
    radius = np.sqrt((grid**2).sum(0))
    image = np.select([radius < 18, radius < 22, radius < 27, radius < 31], [WHITE, GREY, CSF, SKULL], 0.0)
    image += np.random.default_rng(0).normal(0, 3, image.shape)
    affine = np.diag([-1.0, 1.0, 1.0, 1.0])  # not RAS: the profile reads both files in RAS
    nib.save(nib.Nifti1Image(image.astype(np.float32), affine), root / "imagesTr" / "head_0000.nii.gz")
    # the reference reaches the inner skull surface; the "prediction" stops half-way through the CSF
    nib.save(nib.Nifti1Image((radius < 27).astype(np.uint8), affine), root / "labelsTr" / "head.nii.gz")
    nib.save(nib.Nifti1Image((radius < 24.5).astype(np.uint8), affine), root / "predicted" / "head.nii.gz")


def run_profile(*args):
    return subprocess.run(
        [sys.executable, "-m", "scripts.studies.mask_edge_profile", *map(str, args)],
        cwd=BUNDLE,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_profile_tells_a_mask_to_the_inner_skull_from_one_ending_in_the_csf(tmp_path):
    write_phantom(tmp_path)
    out = tmp_path / "profile.json"
    result = run_profile("--dataset_dir", tmp_path, "--masks_dir", tmp_path / "predicted", "--json", out)
    assert result.returncode == 0, result.stderr
    (case,) = json.loads(out.read_text())
    csf_to_white = WHITE - CSF
    assert abs(case["grey_matter"] - (GREY - CSF) / csf_to_white) < 0.05
    # 3 mm outside the reference edge lies the skull; outside the predicted edge, CSF
    assert case["reference"]["just_outside"] > 0.9 * (SKULL - CSF) / csf_to_white
    assert abs(case["predicted"]["just_outside"]) < 0.15
    shells = dict(zip(case["reference"]["shells_mm"], case["reference"]["profile"], strict=True))
    assert abs(shells[-1.5]) < 0.15 and shells[-5.5] > 0.4  # CSF just inside the reference edge, grey matter deeper
    assert case["predicted_ml"] < case["mask_ml"]
    assert "| head | reference |" in result.stdout and "| head | predicted |" in result.stdout


def test_a_missing_mask_is_one_line_naming_it_before_any_work(tmp_path):
    write_phantom(tmp_path)
    (tmp_path / "predicted" / "head.nii.gz").unlink()
    result = run_profile("--dataset_dir", tmp_path, "--masks_dir", tmp_path / "predicted")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"{tmp_path / 'predicted' / 'head.nii.gz'}: not found; give existing case names and folders"
    ]
    assert result.stdout == ""
