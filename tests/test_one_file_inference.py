"""configs/inference.json as SynthStrip, deepbet and HD-BET users run it: one scan (or a glob, or a list) in, its mask
and skull-stripped scan out under the names given; output folders that cannot take the files refused before any scan
is read (issue 29, items 3 and 5)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.bundle import ConfigWorkflow

from scripts.data.inference_cases import scans_to_predict
from tests.conftest import (
    INFERENCE_CONFIG,
    LOGGING,
    METADATA,
    TRAINED,
    affine_for,
    blob_volume,
    bundle_run,
    cli_args,
    run_module,
)


def write_scan(path: Path, shape=(36, 40, 16), dtype=np.float32, seed=0, axes=(0, 1, 2)) -> np.ndarray:
    """A blob scan (``trained_bundle`` masks blobs) stored as ``dtype``; returns its label."""
    image, label = blob_volume(shape, 800.0, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(image.astype(dtype), affine_for((1.1, 0.9, 2.0), axes)), path)
    return label


def predict(bundle_root: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m monai.bundle run --config_file configs/inference.json ...`` as a user types it."""
    return run_module([*bundle_run(INFERENCE_CONFIG), "--bundle_root", str(bundle_root), *args, *cli_args(TRAINED)])


def load(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


def assert_skull_stripped(brain_file: Path, scan: Path, mask_file: Path) -> None:
    """The skull-stripped scan is the scan times its mask, in the scan's data type, on its grid, with its header."""
    brain, image = nib.load(brain_file), nib.load(scan)
    mask = load(mask_file)
    assert mask.any() and not mask.all()
    assert brain.get_data_dtype() == image.get_data_dtype()
    assert np.array_equal(np.asarray(brain.dataobj), np.asarray(image.dataobj) * mask)
    assert (
        np.allclose(brain.affine, image.affine) and brain.header["pixdim"].tolist() == image.header["pixdim"].tolist()
    )
    assert int(brain.header["qform_code"]) == int(image.header["qform_code"])


# --- one file in, one mask out (real subprocesses) ----------------------------------------------------------------
def test_one_scan_in_its_mask_and_skull_stripped_scan_out_under_the_names_given(trained_bundle, tmp_path):
    """SynthStrip's ``-i scan -m mask -o brain``: ``--dataset_dir scan --mask_file mask --brain_file brain``."""
    scan = tmp_path / "sub-01" / "sub-01_T1w.nii.gz"
    label = write_scan(scan, dtype=np.int16, axes=(0, 2, 1))
    write_scan(scan.parent / "sub-01_T2w.nii.gz", seed=1)  # beside it, not named: not predicted
    mask, brain = tmp_path / "out" / "sub-01_mask.nii.gz", tmp_path / "out" / "sub-01_brain.nii"
    args = ["--dataset_dir", str(scan), "--mask_file", str(mask), "--brain_file", str(brain)]
    result = predict(trained_bundle["root"], *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in mask.parent.iterdir()) == sorted([mask.name, brain.name])
    mask_img = nib.load(mask)
    assert mask_img.shape == label.shape and np.allclose(mask_img.affine, nib.load(scan).affine, atol=1e-5)
    assert mask_img.get_data_dtype() == np.uint8
    dice = 2.0 * (load(mask) * label).sum() / (load(mask).sum() + label.sum())
    assert dice >= 0.9, dice
    assert_skull_stripped(brain, scan, mask)
    assert "[1/1] predicted sub-01_T1w" in result.stdout and not (trained_bundle["root"] / "predictions").exists()
    # the same command again leaves the mask alone
    written = mask.stat().st_mtime_ns
    result = predict(trained_bundle["root"], *args)
    assert result.returncode == 0 and f"{mask}: exists, not predicted again" in result.stdout
    assert mask.stat().st_mtime_ns == written


def test_a_glob_and_a_list_of_files_and_folders_each_give_a_mask_per_scan(trained_bundle, tmp_path):
    anat = tmp_path / "anat"
    for index, name in enumerate(["a_T1w.nii.gz", "b_T1w.nii.gz", "b_T2w.nii.gz"]):
        write_scan(anat / name, seed=index)
    glob_out = tmp_path / "glob_out"
    result = predict(
        trained_bundle["root"],
        *["--dataset_dir", str(anat / "*_T1w.nii.gz"), "--output_dir", str(glob_out), "--save_brain", "true"],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    cases = ["a_T1w", "b_T1w"]
    assert sorted(p.name for p in glob_out.iterdir()) == sorted(f"{c}{s}.nii.gz" for c in cases for s in ("", "_brain"))
    for case in cases:
        assert_skull_stripped(glob_out / f"{case}_brain.nii.gz", anat / f"{case}.nii.gz", glob_out / f"{case}.nii.gz")

    folder, single = tmp_path / "folder", tmp_path / "single" / "d.nii"
    write_scan(folder / "c_0000.nii.gz", seed=3)
    write_scan(single, seed=4, dtype=np.int16)
    list_out = tmp_path / "list_out"
    result = predict(
        trained_bundle["root"], *["--dataset_dir", f"['{folder}', '{single}']", "--output_dir", str(list_out)]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in list_out.iterdir()) == ["c.nii.gz", "d.nii.gz"]
    assert nib.load(list_out / "d.nii.gz").shape == nib.load(single).shape


# --- output folders checked before the work --------------------------------------------------------------------
def truncated_scan(path: Path) -> Path:
    """A ``.nii`` whose header is whole but whose voxels are cut off: reading it fails, so a run that reports
    something else about it has not read it yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.ones((16, 16, 8), np.float32), np.eye(4)), path)
    path.write_bytes(path.read_bytes()[:400])
    return path


@pytest.mark.parametrize("key,target", [("output_dir", "/sys/smalabeller_out"), ("mask_file", "/sys/sma/m.nii.gz")])
def test_an_output_folder_that_takes_no_files_is_one_line_before_any_scan_is_read(tmp_path, key, target):
    """/sys takes no new files, even from root (who ignores a chmod 0555); the shipped model, no training needed."""
    scan = truncated_scan(tmp_path / "scans" / "case_0000.nii")
    source = scan.parent if key == "output_dir" else scan  # a folder of scans as before, or one scan
    result = run_module([*bundle_run(INFERENCE_CONFIG), "--dataset_dir", str(source), f"--{key}", target])
    folder = target if key == "output_dir" else str(Path(target).parent)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"output error: {key}={folder}: cannot write there ("), result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "predicted" not in result.stdout
    assert not Path(folder).exists()
    if key == "output_dir":  # with a folder that takes files, the scan fails when its voxels are read: checked first
        result = run_module(
            [*bundle_run(INFERENCE_CONFIG), "--dataset_dir", str(source), "--output_dir", str(tmp_path)]
        )
        assert result.returncode != 0 and "output error" not in result.stderr and "case_0000.nii" in result.stderr


def test_too_little_free_space_is_one_line_naming_the_folder(tmp_path, monkeypatch, one_torch_thread):
    """A mask needs up to its voxel count in bytes (uint8), a skull-stripped scan the scan's own bytes, probabilities
    4 bytes a voxel, each with a 352-byte header; too little free space stops the run before any scan is read."""
    scans = tmp_path / "scans"
    write_scan(scans / "a_0000.nii.gz", shape=(20, 30, 10), dtype=np.int16)
    write_scan(scans / "b_0000.nii.gz", shape=(10, 10, 10))
    out = tmp_path / "out"
    need = sum(352 * 3 + n * (1 + size + 4) for n, size in ((6000, 2), (1000, 4)))
    free = {"bytes": need - 1}
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=free["bytes"]))
    probabilities = str(out / "probabilities")
    assert need == 53112
    with pytest.raises(SystemExit) as stopped:
        scans_to_predict(str(scans), str(out / "masks"), probabilities, save_brain=True)
    assert str(stopped.value) == (
        f"output error: output_dir={out / 'masks'}: 53.1 kB free, but the files to write need up to 53.1 kB "
        f"(uncompressed); free some space or pass --output_dir on another disk"
    )
    free["bytes"] = need
    assert [
        item["case"] for item in scans_to_predict(str(scans), str(out / "masks"), probabilities, True, "", "", True)
    ]

    assert not out.exists()  # the folders the check made are gone again
    # through the bundle: nothing is predicted, no mask written
    free["bytes"] = 10
    workflow = ConfigWorkflow(
        config_file=INFERENCE_CONFIG,
        meta_file=METADATA,
        logging_file=LOGGING,
        workflow_type="infer",
        dataset_dir=str(scans),
        output_dir=str(out / "bundle"),
        num_workers=0,
    )
    workflow.initialize()
    with pytest.raises(SystemExit, match=f"output error: output_dir={out / 'bundle'}: 0.0 kB free, but"):
        workflow.run()
    assert not out.exists()


# --- refused with one line ---------------------------------------------------------------------------------------
def test_case_ids_that_differ_only_in_letter_case_are_one_line_naming_both_files(tmp_path):
    """``Colin27_ch2`` and ``colin27_ch2``: on a case-insensitive file system their masks are one file, so the run is
    refused before any scan is read; the shipped model, no training needed."""
    scans = tmp_path / "scans"
    write_scan(scans / "Colin27_ch2.nii.gz", shape=(8, 8, 8))
    write_scan(scans / "colin27_ch2.nii.gz", shape=(8, 8, 8), seed=1)
    out = tmp_path / "out"
    result = run_module([*bundle_run(INFERENCE_CONFIG), "--dataset_dir", str(scans), "--output_dir", str(out)])
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"input error: {scans / 'colin27_ch2.nii.gz'}: case id 'colin27_ch2' differs from 'Colin27_ch2' "
        f"({scans / 'Colin27_ch2.nii.gz'}) only in letter case: one case twice, or two whose outputs overwrite each "
        "other on a case-insensitive file system; rename or remove one"
    )
    assert not out.exists()


def refusal(*args, **kwargs) -> str:
    with pytest.raises(SystemExit) as stopped:
        scans_to_predict(*args, **kwargs)
    message = str(stopped.value)
    assert message.startswith("input error: ") and "\n" not in message
    return message[len("input error: ") :]


def test_inputs_and_output_names_that_cannot_work_are_refused_with_one_line(tmp_path):
    scans = tmp_path / "scans"
    write_scan(scans / "a.nii.gz", shape=(8, 8, 8))
    write_scan(scans / "a_brain.nii.gz", shape=(8, 8, 8))
    out = str(tmp_path / "out")
    one = str(scans / "a.nii.gz")
    hint = "set --dataset_dir to a NIfTI scan, a folder of"
    assert refusal(str(scans), out, mask_file=str(tmp_path / "m.nii.gz")).endswith(
        "m.nii.gz: one file, but --dataset_dir gives 2 scans; pass --output_dir, a folder, instead"
    )
    assert refusal(one, str(tmp_path / "mask.nii.gz")) == (
        f"output_dir={tmp_path / 'mask.nii.gz'}: a folder for the masks, not a file; for one scan pass --mask_file "
        f"{tmp_path / 'mask.nii.gz'} (its mask) or --brain_file {tmp_path / 'mask.nii.gz'} (the skull-stripped scan)"
    )
    assert (
        refusal(one, out, mask_file="mask.png")
        == "mask_file=mask.png: not a NIfTI file name; end it in .nii.gz or .nii"
    )
    same = str(tmp_path / "x.nii.gz")
    assert refusal(one, out, mask_file=same, brain_file=same) == (
        f"{same}: would be both the mask of 'a' and the skull-stripped scan of 'a'; pass another --brain_file"
    )
    assert refusal(one, out, mask_file=one) == (
        f"{one}: a scan to predict, which the mask of 'a' would replace; pass another --mask_file"
    )
    assert refusal(str(scans), out, save_brain=True) == (
        f"{out}/a_brain.nii.gz: would be both the skull-stripped scan of 'a' and the mask of 'a_brain'; "
        "pass another --output_dir"
    )
    assert refusal(str(tmp_path / "*_T1w.nii.gz"), out).startswith(
        f"{tmp_path / '*_T1w.nii.gz'}: no .nii.gz or .nii file matches this pattern; {hint}"
    )
    assert refusal([one, str(tmp_path / "nope.nii.gz")], out).startswith(
        f"{tmp_path / 'nope.nii.gz'}: no such file or folder; {hint}"
    )
    (tmp_path / "notes.txt").write_text("x")
    assert refusal(str(tmp_path / "notes.txt"), out).startswith(f"{tmp_path / 'notes.txt'}: not a NIfTI file")
    write_scan(tmp_path / "other" / "a_0000.nii.gz", shape=(8, 8, 8))
    assert "both give the case id 'a'" in refusal([one, str(tmp_path / "other")], out)
    assert refusal([one], str(scans / ".." / "scans")).startswith(f"{scans / '..' / 'scans'}: this is the folder of")
    assert refusal(one, out, save_brain="maybe") == "save_brain='maybe': expected true or false"
    assert not Path(out).exists()  # nothing made on refusal
    # what does work: a scan named twice counts once; a mask named beside its scan
    assert [item["case"] for item in scans_to_predict([one, str(tmp_path / "scans" / "a*")], out)] == ["a", "a_brain"]
    beside = str(scans / "a_mask.nii.gz")
    assert scans_to_predict(one, out, mask_file=beside) == [{"image": one, "case": "a", "mask_path": beside}]
