"""One test per kind of bad input: the exit status and a line naming the file."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc

import nibabel as nib
import numpy as np
import pytest

from scripts.data.verify_data import check_dataset, main, verified_cases
from tests.conftest import BUNDLE, VOLUMES, write_dataset


def rewrite(path, fn=None, affine=None, header_zooms=None):
    img = nib.load(path)
    data = np.asarray(img.dataobj)
    new = nib.Nifti1Image(fn(data) if fn else data, img.affine if affine is None else affine)
    if header_zooms is not None:
        new.header.set_zooms(header_zooms)
    nib.save(new, path)


def zero_spacing(path):
    """An sform whose second voxel axis has length 0 (nibabel refuses to write one, so patch the bytes)."""
    import gzip

    raw = bytearray(nib.load(path).to_bytes())
    for row in (280, 296, 312):  # srow_x, srow_y, srow_z; column 1 of each
        raw[row + 4 : row + 8] = np.float32(0.0).tobytes()
    path.write_bytes(gzip.compress(bytes(raw)))


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def dangle(path):
    path.unlink()
    path.symlink_to(path.parent / "moved_away.nii.gz")


def image(root, i):
    return root / "imagesTr" / f"case_{i:02d}_0000.nii.gz"


def label(root, i):
    return root / "labelsTr" / f"case_{i:02d}.nii.gz"


ERRORS = {
    "label_without_image": (lambda r: image(r, 1).unlink(), label, "label without image"),
    "unreadable": (lambda r: truncate(image(r, 1)), image, "unreadable NIfTI"),
    "not_3d": (lambda r: rewrite(image(r, 1), lambda a: np.stack([a, a], -1)), image, "is not 3D"),
    "shape_mismatch": (lambda r: rewrite(label(r, 1), lambda a: a[:-2]), label, "differs from its image"),
    "affine_mismatch": (
        lambda r: rewrite(label(r, 1), affine=nib.load(label(r, 1)).affine + np.diag([0, 0, 0.5, 0])),
        label,
        "affine differs",
    ),
    "label_values": (
        lambda r: rewrite(label(r, 1), lambda a: a * 0.5),
        label,
        "label values {0, 0.5} are not whole numbers >= 0",
    ),
    "negative_label": (
        lambda r: rewrite(label(r, 1), lambda a: -a.astype(np.int16)),
        label,
        "label values {-1, 0} are not whole numbers",
    ),
    "nan_in_image": (lambda r: rewrite(image(r, 1), lambda a: np.where(a > a.mean(), np.nan, a)), image, "NaN or Inf"),
    # Inf as well as NaN: a check that looked for NaN alone passed every test before
    "inf_in_image": (lambda r: rewrite(image(r, 1), lambda a: np.where(a > a.mean(), np.inf, a)), image, "NaN or Inf"),
    "minus_inf_in_image": (
        lambda r: rewrite(image(r, 1), lambda a: np.where(a > a.mean(), -np.inf, a)),
        image,
        "NaN or Inf",
    ),
    "dangling_link": (lambda r: dangle(image(r, 1)), image, "a link to"),
    "constant_image": (lambda r: rewrite(image(r, 1), lambda a: np.full_like(a, 7.0)), image, "constant image"),
    "zero_spacing": (lambda r: zero_spacing(image(r, 1)), image, "zero or negative"),
    "letter_case_duplicate": (
        lambda r: (
            (r / "imagesTr" / "CASE_01_0000.nii.gz").write_bytes(image(r, 1).read_bytes()),
            (r / "labelsTr" / "CASE_01.nii.gz").write_bytes(label(r, 1).read_bytes()),
        ),
        image,
        "differs from 'CASE_01'",
    ),
    "duplicate_case": (
        lambda r: (r / "imagesTr" / "case_01.nii.gz").write_bytes(image(r, 1).read_bytes()),
        lambda r, i: r / "imagesTr" / "case_01.nii.gz",
        "duplicate case id",
    ),
}


@pytest.mark.parametrize("kind", sorted(ERRORS))
def test_error_is_reported_with_the_file_and_exit_status_1(tmp_path, capsys, kind):
    root = write_dataset(tmp_path / "data")
    damage, culprit, text = ERRORS[kind]
    damage(root)
    status = main(["--dataset_dir", str(root)])
    out = capsys.readouterr().out
    assert status == 1
    line = next(l for l in out.splitlines() if text in l)
    assert line.startswith(f"ERROR {culprit(root, 1)}: ")
    assert "Traceback" not in out


def test_too_few_cases_for_a_split(tmp_path, capsys):
    root = write_dataset(tmp_path / "data", volumes=[((20, 20, 6), (1, 1, 1), (0, 1, 2), 1.0)])
    assert main(["--dataset_dir", str(root)]) == 1
    assert f"ERROR {root / 'labelsTr'}: 1 labelled case(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "damage, text",
    [
        (lambda r: label(r, 2).rename(r / "unused.nii.gz"), "image without label"),
        (lambda r: rewrite(label(r, 2), lambda a: np.zeros_like(a)), "empty label"),
    ],
)
def test_warnings_do_not_fail(tmp_path, capsys, damage, text):
    root = write_dataset(tmp_path / "data")
    damage(root)
    assert main(["--dataset_dir", str(root)]) == 0
    assert any(l.startswith("WARNING ") and text in l for l in capsys.readouterr().out.splitlines())


def test_all_problems_reported_in_one_go(tmp_path, capsys):
    root = write_dataset(tmp_path / "data")
    truncate(image(root, 0))
    rewrite(label(root, 3), lambda a: a * 0.5)
    assert main(["--dataset_dir", str(root)]) == 1
    out = capsys.readouterr().out
    assert str(image(root, 0)) in out and str(label(root, 3)) in out and "2 error(s)" in out


def test_binarize_labels_and_label_threshold_accept_0_255_masks(tmp_path):
    root = write_dataset(tmp_path / "data")
    for i in range(5):
        rewrite(label(root, i), lambda a: a * 255)
    for options in ({"binarize_labels": "true"}, {"label_threshold": "128"}):
        _, problems = check_dataset(root / "imagesTr", root / "labelsTr", **options)
        assert not [p for p in problems if p.severity == "error"]


def test_a_label_with_every_value_below_the_threshold_is_an_error_not_an_empty_case(tmp_path):
    root = write_dataset(tmp_path / "data")
    for i in range(5):
        rewrite(label(root, i), lambda a: a * 255)
    rewrite(label(root, 2), lambda a: a // 5)  # 0/51: a soft mask, all below 128
    _, problems = check_dataset(root / "imagesTr", root / "labelsTr", label_threshold="128")
    assert [str(p) for p in problems if p.severity == "error"] == [
        f"{label(root, 2)}: every label value is below the foreground threshold 128 (largest 51), so the case would "
        "train as empty; lower --label_threshold"
    ]


def rotate(path, degrees: float):
    affine = nib.load(path).affine.copy()
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    affine[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ affine[:3, :3]  # about the first voxel's centre
    rewrite(path, affine=affine)


@pytest.mark.parametrize("degrees, error", [(5.0, True), (0.01, False)])
def test_a_label_turned_against_its_image_is_caught_in_degrees(tmp_path, degrees, error):
    root = write_dataset(tmp_path / "data")
    rotate(label(root, 1), degrees)
    _, problems = check_dataset(root / "imagesTr", root / "labelsTr")
    found = [str(p) for p in problems if p.severity == "error"]
    if error:  # 5 degrees moves 1 mm voxel axes by 0.09 mm: inside the former 0.1 mm tolerance
        assert found == [
            f"{label(root, 1)}: affine differs: voxel axes turned 5.0 degrees against its image's; write "
            "the label with the image's affine"
        ]
    else:
        assert not found


def test_rgb_and_oversized_volumes_are_refused_from_the_header(tmp_path, capsys):
    import gzip

    root = write_dataset(tmp_path / "data")
    grey = np.asarray(nib.load(image(root, 1)).dataobj)
    rgb = np.zeros(grey.shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    nib.save(nib.Nifti1Image(rgb, nib.load(image(root, 1)).affine), image(root, 1))
    # a header claiming 4000^3 float32 voxels over a few bytes of data: a decompression bomb would be read first
    header = nib.Nifti1Header()
    header.set_data_shape((4000, 4000, 4000))
    header.set_data_dtype(np.float32)
    header.set_sform(nib.load(image(root, 2)).affine, code=1)
    image(root, 2).write_bytes(gzip.compress(header.binaryblock + b"\0" * 4 + b"\0" * 1024))
    tracemalloc.start()
    assert main(["--dataset_dir", str(root)]) == 1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out = capsys.readouterr().out
    assert f"ERROR {image(root, 1)}: voxels of type" in out and "convert the scan to one grey channel" in out
    assert f"ERROR {image(root, 2)}: shape (4000, 4000, 4000) needs 476.8 GiB to load" in out
    assert "Traceback" not in out and peak < 64 * 2**20


def test_checking_many_volumes_holds_one_at_a_time(tmp_path):
    volumes = [((64, 64, 64), (1.0, 1.0, 1.0), (0, 1, 2), 100.0)] * 24  # 1 MiB of float32 each
    root = write_dataset(tmp_path / "data", volumes=volumes)
    tracemalloc.start()
    cases, problems = check_dataset(root / "imagesTr", root / "labelsTr")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(cases) == 24 and not problems
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB for 24 MiB of volumes"


def test_case_ids_that_differ_only_in_letter_case_are_one_line_naming_both_files(tmp_path):
    """``Colin27_ch2`` and ``colin27_ch2``: one subject twice in the split, and on a case-insensitive file system two
    cases whose masks and cache entries overwrite each other; training and evaluation check with this."""
    root = write_dataset(tmp_path / "data", volumes=VOLUMES[:4])
    for case, source in (("Colin27_ch2", 0), ("colin27_ch2", 1)):
        (root / "imagesTr" / f"{case}_0000.nii.gz").write_bytes(image(root, source).read_bytes())
        (root / "labelsTr" / f"{case}.nii.gz").write_bytes(label(root, source).read_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "scripts.data.verify_data", "--dataset_dir", str(root)],
        cwd=BUNDLE,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if "letter case" in line]
    kept, extra = (root / "imagesTr" / "Colin27_ch2_0000.nii.gz"), (root / "imagesTr" / "colin27_ch2_0000.nii.gz")
    kept_label, extra_label = root / "labelsTr" / "Colin27_ch2.nii.gz", root / "labelsTr" / "colin27_ch2.nii.gz"
    assert lines == [
        f"ERROR {extra}: case id 'colin27_ch2' differs from 'Colin27_ch2' ({kept}) only in letter case: one case "
        "twice, or two whose outputs overwrite each other on a case-insensitive file system; rename or remove one",
        f"ERROR {extra_label}: case id 'colin27_ch2' differs from 'Colin27_ch2' ({kept_label}) only in letter case: "
        "one case twice, or two whose outputs overwrite each other on a case-insensitive file system; rename or "
        "remove one",
    ]
    with pytest.raises(SystemExit, match=f"input error: {extra}: case id 'colin27_ch2' differs from 'Colin27_ch2'"):
        verified_cases(root / "imagesTr", root / "labelsTr", enabled=False)  # --verify_data false: the pairing only


def test_command_line_entry_point(tmp_path):
    root = write_dataset(tmp_path / "data")
    truncate(label(root, 4))
    result = subprocess.run(
        [sys.executable, "-m", "scripts.data.verify_data", "--dataset_dir", str(root)],
        cwd=BUNDLE,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert f"ERROR {label(root, 4)}: unreadable NIfTI" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
