"""Each development source's brain mask before and after ``scripts.tools.brain_mask_rule.to_rule``: volume, where its
edge lies on the scan's intensities, and how far its lowest point lies below the cerebellum's.

    python -m scripts.studies.mask_rule_table [--download_dir real_t1_packages] [--sources cn200 sri24] [--json rule.json]
        [--figure docs/mask_rule.png --figure_case real_t1/imagesTr/cn200_native_0000.nii.gz]

Reads the sources' own masks from the packages ``scripts.tools.prepare_real_t1`` downloads (the same ``--download_dir``,
so nothing is fetched twice). Both masks of a source are profiled on one intensity scale (0 = the CSF class, 1 = white
matter, fitted inside the source's mask: ``scripts.studies.mask_edge_profile``): a mask at the brain's surface has grey
matter just inside its edge and CSF just outside; one that takes in the CSF has dark values inside and skull outside.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.orientations import apply_orientation

from scripts.common.tool_arguments import ToolArgumentParser
from scripts.studies.mask_edge_profile import edge_profile
from scripts.studies.study_files import markdown_table, write_json
from scripts.tools import prepare_real_t1
from scripts.tools.brain_mask_rule import cerebellum_bottom, ras_grid, tissue_scale, to_rule


def describe(scaled: np.ndarray, mask: np.ndarray, spacing: np.ndarray) -> dict:
    profile = edge_profile(scaled, mask, spacing)
    slices = np.flatnonzero(mask.any(axis=(0, 1)))
    bottom = cerebellum_bottom(mask, spacing)
    return {
        "ml": round(float(mask.sum() * spacing.prod()) / 1000, 1),
        "just_inside": profile["just_inside"],
        "just_outside": profile["just_outside"],
        "below_cerebellum_mm": None if bottom is None else round(float((bottom - slices[0]) * spacing[2]), 1),
    }


def source_row(source: str, archives: dict) -> dict:
    t1, mask, affine = prepare_real_t1.SOURCES[source](archives)
    rule = prepare_real_t1.MASK_RULE[source]
    harmonised = to_rule(t1, mask, affine, rule) if rule else mask
    forward, _, spacing = ras_grid(affine)
    image = apply_orientation(np.asarray(t1, dtype=np.float32), forward)
    before, after = (apply_orientation(np.asarray(m, dtype=bool), forward) for m in (mask, harmonised))
    csf, _, white = tissue_scale(image, before)
    scaled = (image - csf) / (white - csf)
    return {
        "source": source,
        "rule": rule,
        "before": describe(scaled, before, spacing),
        "after": describe(scaled, after, spacing),
    }


def table(rows: list[dict]) -> str:
    headers = ["source", "mask", "ml", "just inside", "just outside", "lowest point below the cerebellum's, mm"]
    cells = []
    for row in rows:
        for when in ("before", "after"):
            d = row[when]
            label = "source's own" if when == "before" else ("to the rule" if row["rule"] else "kept (cerebrum only)")
            below = "–" if d["below_cerebellum_mm"] is None else f"{d['below_cerebellum_mm']:.0f}"
            cells.append(
                [row["source"], label, f"{d['ml']:.0f}", f"{d['just_inside']:.2f}", f"{d['just_outside']:.2f}", below]
            )
    return markdown_table(headers, cells)


def figure(image_path: Path, label_path: Path, out: Path) -> None:
    """Three orthogonal slices through the mask's centre, the mask outlined: the rule as a picture (model card)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = nib.as_closest_canonical(nib.load(image_path))
    mask = np.asarray(nib.as_closest_canonical(nib.load(label_path)).dataobj) > 0
    data, spacing = image.get_fdata(dtype=np.float32), image.header.get_zooms()[:3]
    centre = [
        int(round(np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis))).mean())) for axis in range(3)
    ]
    views = [
        ("sagittal", data[centre[0]], mask[centre[0]], spacing[2] / spacing[1]),
        ("coronal", data[:, centre[1]], mask[:, centre[1]], spacing[2] / spacing[0]),
        ("axial", data[:, :, centre[2]], mask[:, :, centre[2]], spacing[1] / spacing[0]),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    for ax, (name, plane, outline, aspect) in zip(axes, views, strict=True):
        ax.imshow(plane.T, cmap="gray", origin="lower", aspect=aspect, vmax=float(np.percentile(data, 99.5)))
        ax.contour(outline.T.astype(float), levels=[0.5], colors="r", linewidths=0.8)
        ax.set_title(name)
        ax.axis("off")
    fig.suptitle(f"{label_path.name.split('.')[0]}: the brain at its surface (red)")
    fig.tight_layout()
    fig.savefig(out, dpi=72)


def parse(argv=None) -> argparse.Namespace:
    parser = ToolArgumentParser(prog="python -m scripts.studies.mask_rule_table", description=__doc__.splitlines()[0])
    parser.add_argument("--download_dir", default="real_t1_packages", help="the packages prepare_real_t1 downloaded")
    parser.add_argument(
        "--sources", nargs="*", default=list(prepare_real_t1.SOURCES), choices=list(prepare_real_t1.SOURCES)
    )
    parser.add_argument("--json", default=None)
    parser.add_argument("--figure", default=None, help="PNG: --figure_case's scan with its mask outlined, 3 planes")
    parser.add_argument("--figure_case", default=None, help="imagesTr/<case>_0000.nii.gz of prepare_real_t1's set")
    args = parser.parse_args(argv)
    if args.figure and not args.figure_case:
        parser.error("--figure needs --figure_case, the scan to draw")
    return args


def run(args: argparse.Namespace) -> list[dict]:
    """The figure, if asked for, then one row per source (downloading the packages not yet in ``--download_dir``)."""
    if args.figure:
        image = Path(args.figure_case)
        figure(
            image, image.parent.parent / "labelsTr" / image.name.replace("_0000.nii.gz", ".nii.gz"), Path(args.figure)
        )
    if not args.sources:
        return []
    packages = [prepare_real_t1.NEEDS[s] for s in args.sources if s in prepare_real_t1.NEEDS]
    archives = prepare_real_t1.download(Path(args.download_dir), packages) if packages else {}
    return [source_row(source, archives) for source in args.sources]


def report(args: argparse.Namespace, rows: list[dict]) -> None:
    if not rows:  # --sources with no name: the figure alone
        return
    print(table(rows))
    if args.json:
        write_json(Path(args.json), rows)


def main(argv=None) -> None:
    args = parse(argv)
    report(args, run(args))


if __name__ == "__main__":
    main()
