"""The classical baseline of the tissue task: k-means with three clusters on each scan's intensities inside the
reference's brain (the baseline is given the region; only the split into CSF, grey and white matter is its own).

    python -m scripts.tools.prepare_tissue_classes --output_dir tissue_t1
    python -m scripts.studies.tissue_kmeans --dataset_dir tissue_t1 [--out_dir tissue_kmeans] [--json tissue_kmeans.json]

Clusters are ordered by their mean intensity and named by T1 contrast, CSF < grey < white matter; the label map gets
the dataset's values for those names (its ``dataset.json``) on the scan's grid, in ``out_dir/<case>.nii.gz``. Prints one
markdown row per case with each class's Dice (``scripts.metrics.class_scores``) and writes them as JSON (default
``out_dir/tissue_kmeans.json``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from sklearn.cluster import KMeans

from scripts.common.tool_arguments import ToolArgumentParser
from scripts.data.label_classes import label_dtype
from scripts.metrics.class_scores import per_class_dice
from scripts.studies.study_files import labelled_cases, markdown_table, write_json

CLASSES = ("CSF", "grey matter", "white matter")  # darkest to brightest on T1
SAMPLE = 200_000  # voxels the clusters are fitted on; every voxel is then assigned to its nearest centre


def kmeans_classes(image: np.ndarray, region: np.ndarray, values, seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """(label map with ``values`` for the darkest to brightest of as many k-means clusters of the intensities in
    ``region``, 0 elsewhere; the cluster centres, darkest first). For the tissue task the values are CSF, grey and
    white matter's, in that order."""
    intensities = np.asarray(image, dtype=np.float64)[region][:, None]
    if len(np.unique(intensities[:: max(1, intensities.shape[0] // SAMPLE)])) < len(values):
        raise SystemExit(f"k-means needs at least {len(values)} distinct intensities in the brain region")
    sample = np.random.default_rng(seed).permutation(intensities.shape[0])[:SAMPLE]
    kmeans = KMeans(n_clusters=len(values), n_init=10, random_state=seed).fit(intensities[sample])
    order = np.argsort(kmeans.cluster_centers_.ravel())
    value_of_cluster = np.empty(len(values), np.dtype(label_dtype({str(v): v for v in values})))
    value_of_cluster[order] = values  # the darkest cluster takes values[0] (CSF), the brightest values[-1]
    labels = np.zeros(region.shape, value_of_cluster.dtype)
    labels[region] = value_of_cluster[kmeans.predict(intensities)]
    return labels, [float(c) for c in kmeans.cluster_centers_.ravel()[order]]


def write_kmeans_map(image_path: Path, label_path: Path, values, out_path: Path) -> tuple[float, list[float]]:
    """``kmeans_classes`` of one scan inside its reference's foreground (label > 0), written to ``out_path`` on the
    scan's grid; (seconds the clustering took, the cluster centres)."""
    image = nib.load(image_path)
    region = np.asarray(nib.load(label_path).dataobj) > 0
    start = time.perf_counter()
    labels, centres = kmeans_classes(np.asarray(image.dataobj), region, values)
    seconds = time.perf_counter() - start
    nib.save(nib.Nifti1Image(labels, image.affine), out_path)
    return seconds, centres


def class_values(dataset_dir: Path) -> dict[str, int]:
    """The value of each of ``CLASSES`` in the dataset's ``dataset.json``."""
    path = dataset_dir / "dataset.json"
    if not path.is_file():
        raise SystemExit(f"{path} not found: --dataset_dir is a folder of scripts.tools.prepare_tissue_classes")
    labels = json.loads(path.read_text()).get("labels", {})
    missing = [name for name in CLASSES if name not in labels]
    if missing:
        raise SystemExit(f"{path}: labels has no {', '.join(missing)} (it has {', '.join(labels) or 'none'})")
    return {name: int(labels[name]) for name in CLASSES}


def dataset_cases(dataset_dir: Path) -> list[str]:
    """The set's cases: its ``cases.json`` (``scripts.tools.prepare_tissue_classes``) in order, else its labels."""
    cases_path = dataset_dir / "cases.json"
    if cases_path.is_file():
        return [c["case"] for c in json.loads(cases_path.read_text())]
    return labelled_cases(dataset_dir)


def parse(argv=None) -> argparse.Namespace:
    parser = ToolArgumentParser(prog="python -m scripts.studies.tissue_kmeans", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset_dir", type=Path, required=True, help="output of scripts.tools.prepare_tissue_classes"
    )
    parser.add_argument("--out_dir", type=Path, default=Path("tissue_kmeans"), help="where the label maps go")
    parser.add_argument(
        "--json", type=Path, default=None, help="write the rows here (default out_dir/tissue_kmeans.json)"
    )
    args = parser.parse_args(argv)
    if args.json is None:
        args.json = args.out_dir / "tissue_kmeans.json"
    return args


def run(args: argparse.Namespace) -> list[dict]:
    """One row per case: each class's Dice of the k-means map against the reference, the cluster centres, seconds."""
    values = class_values(args.dataset_dir)
    cases = dataset_cases(args.dataset_dir)
    if not cases:
        raise SystemExit(f"{args.dataset_dir}: no cases (labelsTr/*.nii.gz)")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for case in cases:
        image_path, label_path = (
            args.dataset_dir / "imagesTr" / f"{case}_0000.nii.gz",
            args.dataset_dir / "labelsTr" / f"{case}.nii.gz",
        )
        map_path = args.out_dir / f"{case}.nii.gz"
        seconds, centres = write_kmeans_map(image_path, label_path, list(values.values()), map_path)
        dice = per_class_dice(map_path, label_path, values.values())
        rows.append(
            {
                "case": case,
                "dice": {name: dice[value] for name, value in values.items()},
                "cluster_centres": dict(zip(CLASSES, centres, strict=True)),
                "seconds": round(seconds, 2),
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    cells = [[r["case"], *(f"{r['dice'][name]:.4f}" for name in CLASSES), f"{r['seconds']:.1f}"] for r in rows]
    means = [float(np.nanmean([r["dice"][name] for r in rows])) for name in CLASSES]
    cells.append(["mean", *(f"{m:.4f}" for m in means), ""])
    return markdown_table(["case", *(f"{name} Dice" for name in CLASSES), "k-means s"], cells)


def report(args: argparse.Namespace, rows: list[dict]) -> None:
    write_json(args.json, rows)  # a Dice of a class neither map holds (NaN) is null
    print(table(rows) + f"\n\nJSON: {args.json}")


def main(argv=None) -> None:
    args = parse(argv)
    report(args, run(args))


if __name__ == "__main__":
    main()
