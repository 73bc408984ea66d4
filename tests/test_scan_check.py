"""The one scan check (scripts/data/scan_check.py), run by training's data check and by inference alike: a bad scan
among good ones costs only itself in inference, named with the reason training gives (issue 30, item 1)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from scripts.data.inference_cases import end_of_run, scans_to_predict
from scripts.data.scan_check import ScanError, check_scan
from scripts.data.verify_data import check_dataset
from tests.conftest import (
    INFERENCE_CONFIG,
    TRAINED,
    affine_for,
    blob_volume,
    bundle_run,
    cli_args,
    run_module,
    write_dataset,
)


def rewrite(path: Path, change) -> None:
    img = nib.load(path)
    nib.save(nib.Nifti1Image(change(np.asarray(img.dataobj)), img.affine), path)


def with_nan(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a[:2, :2, :2] = np.nan  # 8 voxels
    return a


def with_inf(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a[0, 0, :3] = np.inf
    return a


def truncated(path: Path) -> None:
    """Half of a .nii.gz: the header reads, the compressed voxels end early (a copy cut off)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def dangling(path: Path) -> None:
    """A link to a scan that is gone (a moved or unmounted data folder)."""
    path.unlink()
    os.symlink(path.parent / "moved_away.nii.gz", path)


# the kinds of bad scan a real folder holds, each with the words of its line
BAD = {
    "nan": (lambda p: rewrite(p, with_nan), "8 NaN or Inf voxel(s); replace them (e.g. with 0) or leave the scan out"),
    "inf": (lambda p: rewrite(p, with_inf), "3 NaN or Inf voxel(s); replace them (e.g. with 0) or leave the scan out"),
    "truncated": (truncated, "unreadable NIfTI (EOFError: "),
    "dangling": (dangling, "a link to "),
    "all_zero": (lambda p: rewrite(p, np.zeros_like), "constant image (every voxel 0); remove it or re-export"),
}


def write_scan(path: Path, seed: int) -> Path:
    image, _ = blob_volume((36, 40, 16), 800.0, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(image, affine_for((1.1, 0.9, 2.0), (0, 1, 2))), path)
    return path


def scans_folder(root: Path) -> tuple[Path, dict[str, Path]]:
    """Two good scans and one of each kind in ``BAD``, as ``<case>_0000.nii.gz``."""
    folder = root / "scans"
    for index, case in enumerate(["good_a", "good_b", *BAD]):
        write_scan(folder / f"{case}_0000.nii.gz", index)
    bad = {}
    for kind, (damage, _) in BAD.items():
        damage(folder / f"{kind}_0000.nii.gz")
        bad[kind] = folder / f"{kind}_0000.nii.gz"
    return folder, bad


def two_volumes(path: Path) -> None:
    rewrite(path, lambda a: np.stack([a, a], -1))


# and the others the check has refused since training had it
OTHERS = {
    "zero_byte": (lambda p: p.write_bytes(b""), "unreadable NIfTI ("),
    "two_volumes": (two_volumes, "shape (36, 40, 16, 2) is not 3D; give one 3D volume per file"),
}


@pytest.mark.parametrize("kind", sorted({**BAD, **OTHERS}))
def test_each_kind_of_bad_scan_is_refused_with_its_reason(tmp_path, kind):
    scan = write_scan(tmp_path / "scan.nii.gz", 0)
    damage, words = {**BAD, **OTHERS}[kind]
    damage(scan)
    with pytest.raises(ScanError) as refused:
        check_scan(scan)
    assert str(refused.value).startswith(words) and "\n" not in str(refused.value)


def test_what_the_network_can_take_passes(tmp_path):
    image, _ = blob_volume((20, 24, 10), 300.0, 1)
    for name, array in (("int16.nii.gz", image.astype(np.int16)), ("fourth.nii", image[..., None])):
        nib.save(nib.Nifti1Image(array, np.eye(4)), tmp_path / name)
        img, voxels = check_scan(tmp_path / name)
        assert voxels.shape == (20, 24, 10)
    nib.save(nib.Nifti1Image(image[:, :, :1], np.eye(4)), tmp_path / "one_slice.nii.gz")
    with pytest.raises(ScanError, match=r"shape \(20, 24, 1\) has fewer than 2 voxels along an axis"):
        check_scan(tmp_path / "one_slice.nii.gz")


def test_training_and_inference_give_a_bad_scan_the_same_line(tmp_path):
    """One check: the data check's error for an image and inference's skip line for the same file agree word for
    word."""
    root = write_dataset(tmp_path / "data")
    images = sorted((root / "imagesTr").iterdir())
    for (damage, _), image in zip(BAD.values(), images, strict=True):
        damage(image)
    _, problems = check_dataset(root / "imagesTr", root / "labelsTr")
    training = {str(p.path): p.message for p in problems if p.severity == "error" and p.path.parent.name == "imagesTr"}
    scans = scans_to_predict(str(root / "imagesTr"), str(tmp_path / "masks"))
    assert list(scans) == [] and len(scans.skipped) == 5
    assert dict(scans.skipped) == training
    for (_, words), image in zip(BAD.values(), images, strict=True):
        assert training[str(image)].startswith(words)


def test_inference_skips_each_bad_scan_with_one_line_and_keeps_the_good_ones(tmp_path, caplog):
    folder, bad = scans_folder(tmp_path)
    out = tmp_path / "masks"
    with caplog.at_level(logging.INFO):
        scans = scans_to_predict(str(folder), str(out))
    assert [item["case"] for item in scans] == ["good_a", "good_b"]
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(lines) == len(BAD)
    for kind, path in bad.items():
        assert [line for line in lines if str(path) in line] == [f"skipped {path}: {dict(scans.skipped)[str(path)]}"]
        assert dict(scans.skipped)[str(path)].startswith(BAD[kind][1])
    assert not out.exists()  # nothing written by the check
    with pytest.raises(SystemExit) as ended:
        end_of_run(scans)
    assert str(ended.value) == (
        f"predicted 2, skipped 5: {', '.join(str(p) for p in sorted(bad.values()))} (each named above with the reason)"
    )
    end_of_run(scans_to_predict(str(folder / "good_a_0000.nii.gz"), str(out)))  # none skipped: no exit


# --- through the command line -------------------------------------------------------------------------------------
def test_a_folder_with_bad_scans_among_good_ones_gives_every_good_mask_and_names_every_bad_scan(
    trained_bundle, tmp_path
):
    """The issue's rows: NaN, a truncated .nii.gz, a dangling link, Inf, an all-zero scan, each among good scans."""
    folder, bad = scans_folder(tmp_path)
    out = tmp_path / "masks"
    command = [
        *bundle_run(INFERENCE_CONFIG),
        *["--bundle_root", str(trained_bundle["root"]), "--dataset_dir", str(folder), "--output_dir", str(out)],
        *cli_args(TRAINED),
    ]
    result = run_module(command)
    log = result.stdout + result.stderr
    assert result.returncode == 1, log[-3000:]
    assert "Traceback" not in log
    assert sorted(p.name for p in out.iterdir()) == ["good_a.nii.gz", "good_b.nii.gz"]
    for case in ("good_a", "good_b"):
        mask = np.asarray(nib.load(out / f"{case}.nii.gz").dataobj)
        assert mask.any() and not mask.all()
    for kind, path in bad.items():
        lines = [line for line in result.stdout.splitlines() if f"skipped {path}: " in line]
        assert len(lines) == 1 and BAD[kind][1] in lines[0], (kind, lines)
    names = ", ".join(str(p) for p in sorted(bad.values()))
    summary = f"predicted 2, skipped 5: {names} (each named above with the reason)"
    assert result.stderr.strip().splitlines()[-1] == summary
    # the same command again: the masks are kept, the bad scans named again, the status still says so
    written = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = run_module(command)
    assert again.returncode == 1 and "Traceback" not in again.stdout + again.stderr
    assert again.stderr.strip().splitlines()[-1] == summary.replace(
        "predicted 2", "predicted 0 (2 mask(s) already written, kept)"
    )
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == written
