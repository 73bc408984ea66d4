"""Where a brain mask's edge lies on the scan's intensity profile: the mask rule of a source, measured without a model.

Brain masks follow different rules (brain only, brain with some of the CSF around it, everything up to the inner skull
surface); a model trained on some rules cannot guess another from the image. For each case this prints the median
tissue intensity in 1 mm shells on both sides of the reference mask's edge (and of a predicted mask's edge, with
``--masks_dir``), on one scale per scan: 0 = the mean of the darkest of three intensity classes inside the reference
mask (CSF), 1 = the mean of the brightest (white matter), fitted by a Gaussian mixture. A mask that ends inside the CSF
has dark shells outside its edge; one that reaches the inner skull has no dark shell outside it.

    python -m scripts.studies.mask_edge_profile --dataset_dir real_t1 [--cases cn200_native sri24_native]
        [--masks_dir loso/sri24/predictions] [--json profile.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from scripts.common.tool_arguments import ToolArgumentParser
from scripts.studies.study_files import labelled_cases, write_json
from scripts.tools.brain_mask_rule import tissue_scale

SHELLS_MM = np.arange(-5.5, 6.0, 1.0)  # shell centres: negative inside the mask, positive outside
NEAR_MM = 3.0  # the "just inside" / "just outside" summaries cover this distance from the edge


def signed_edge_distance(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Distance (mm) of each voxel centre from the mask's edge, negative inside: half a voxel for the voxels at it."""
    inside = ndimage.distance_transform_edt(mask, sampling=spacing)
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing)
    half_voxel = float(spacing.min()) / 2
    return np.where(mask, half_voxel - inside, outside - half_voxel)


def edge_profile(scaled: np.ndarray, mask: np.ndarray, spacing: np.ndarray) -> dict:
    """Median scaled intensity in 1 mm shells across ``mask``'s edge and within ``NEAR_MM`` on either side."""
    distance = signed_edge_distance(mask, spacing)

    def median(selected: np.ndarray) -> float | None:
        return round(float(np.median(scaled[selected])), 3) if selected.any() else None

    return {
        "shells_mm": SHELLS_MM.tolist(),
        "profile": [median((distance >= c - 0.5) & (distance < c + 0.5)) for c in SHELLS_MM],
        "just_inside": median((distance < 0) & (distance >= -NEAR_MM)),
        "just_outside": median((distance > 0) & (distance <= NEAR_MM)),
    }


def load_ras(path: Path) -> tuple[np.ndarray, np.ndarray]:
    image = nib.as_closest_canonical(nib.load(path))
    return np.asarray(image.dataobj, dtype=np.float32), np.asarray(image.header.get_zooms()[:3], dtype=float)


def load_mask(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    mask = load_ras(path)[0] > 0.5
    if mask.shape != shape:
        raise SystemExit(f"{path}: shape {mask.shape} differs from its image's {shape}")
    return mask


def profile_case(image_path: Path, label_path: Path, mask_path: Path | None = None) -> dict:
    image, spacing = load_ras(image_path)
    label = load_mask(label_path, image.shape)
    csf, grey, white = tissue_scale(image, label)
    scaled = (image - csf) / (white - csf)
    voxel_ml = float(spacing.prod()) / 1000
    result = {
        "case": label_path.name.split(".")[0],
        "mask_ml": round(float(label.sum()) * voxel_ml),
        "grey_matter": round((grey - csf) / (white - csf), 3),
        "reference": edge_profile(scaled, label, spacing),
    }
    if mask_path is not None:
        predicted = load_mask(mask_path, image.shape)
        result["predicted"] = edge_profile(scaled, predicted, spacing)
        result["predicted_ml"] = round(float(predicted.sum()) * voxel_ml)
    return result


def table(results: list[dict]) -> str:
    shells = " | ".join(f"{c:+.1f}" for c in SHELLS_MM)
    lines = [
        f"| case | mask | ml | grey matter | just inside | just outside | {shells} |",
        "| --- | --- | --- | --- | --- | --- | " + " | ".join("---" for _ in SHELLS_MM) + " |",
    ]
    for r in results:
        for which, ml in (("reference", r["mask_ml"]), ("predicted", r.get("predicted_ml"))):
            if which not in r:
                continue
            p = r[which]
            values = " | ".join("–" if v is None else f"{v:.2f}" for v in p["profile"])
            lines.append(
                f"| {r['case']} | {which} | {ml} | {r['grey_matter']:.2f} | {p['just_inside']:.2f} | "
                f"{p['just_outside']:.2f} | {values} |"
            )
    return "\n".join(lines)


def parse(argv=None) -> argparse.Namespace:
    parser = ToolArgumentParser(prog="python -m scripts.studies.mask_edge_profile", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset_dir", type=Path, required=True, help="nnU-Net folder: imagesTr/<case>_0000.nii.gz, labelsTr/"
    )
    parser.add_argument("--cases", nargs="+", default=None, help="case names (default: every label in labelsTr)")
    parser.add_argument(
        "--masks_dir", type=Path, default=None, help="predicted masks <case>.nii.gz to profile beside the labels"
    )
    parser.add_argument("--json", type=Path, default=None)
    return parser.parse_args(argv)


def case_files(args: argparse.Namespace) -> list[tuple[Path, Path, Path | None]]:
    """(image, reference mask, predicted mask or None) of each case, every file there (else one line, before any
    work)."""
    names = args.cases or labelled_cases(args.dataset_dir)
    if not names:
        raise SystemExit(
            f"{args.dataset_dir / 'labelsTr'}: no labels; give an nnU-Net folder with labelsTr/<case>.nii.gz"
        )
    triples = [
        (
            args.dataset_dir / "imagesTr" / f"{name}_0000.nii.gz",
            args.dataset_dir / "labelsTr" / f"{name}.nii.gz",
            args.masks_dir / f"{name}.nii.gz" if args.masks_dir else None,
        )
        for name in names
    ]
    for path in (p for triple in triples for p in triple if p is not None):
        if not path.is_file():
            raise SystemExit(f"{path}: not found; give existing case names and folders")
    return triples


def run(args: argparse.Namespace) -> list[dict]:
    return [profile_case(*triple) for triple in case_files(args)]


def report(args: argparse.Namespace, results: list[dict]) -> None:
    print(table(results))
    if args.json:
        write_json(args.json, results)


def main(argv=None) -> None:
    args = parse(argv)
    report(args, run(args))


if __name__ == "__main__":
    main()
