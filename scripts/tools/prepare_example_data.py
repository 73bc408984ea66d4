"""A development dataset of real MRI, built from nilearn's packaged MNI152 2009 T1 template (no download).

    python -m scripts.tools.prepare_example_data --output_dir example_data [--num_cases 8] [--num_test 3] [--seed 0]

writes nnU-Net layout: ``imagesTr/<case>_0000.nii.gz`` + ``labelsTr/<case>.nii.gz`` (training cases) and
``imagesTs`` + ``labelsTs`` (held-out cases). The label is the brain: grey + white matter probability > 0.5.

Every case is a different "acquisition" of a differently shaped head:

* anatomy: a random similarity-plus-shear transform of the template about the brain centre (scale 0.9-1.1 per
  axis, rotation up to 12 degrees about each axis, shear up to 0.05, shift up to 8 mm), so no two brains coincide;
* scalp: the template is skull-stripped, so a synthetic dark skull (2-5 mm from the head) and bright fat/scalp
  (5-11 mm) shell with random thickness and texture is added around it, as in an unstripped T1 scan;
* grid: voxel spacing 0.9-1.5 mm in-plane and 1.0-3.0 mm through-plane (anisotropic), acquired axially, coronally
  or sagittally (the thick axis is the last voxel axis, the affine says which world axis that is, with random
  flips), thick slices averaged (Gaussian along the slice axis) as a real thick-slice acquisition does;
* field of view: cropped at random (up to 12 % per side, some cases cut the top of the head);
* intensity: a smooth multiplicative bias field (up to about +/-30 %), a scale of 0-20 ... 0-10000, and in some
  cases Rician-like noise filling the whole background (so "nonzero voxels" is the whole volume).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from scripts.common.tool_arguments import ToolArgumentParser

logger = logging.getLogger(__name__)

ORIENTATIONS = ("axial", "coronal", "sagittal")
# voxel axis -> world axis (RAS) for each acquisition; the last voxel axis is the slice (thick) axis
VOXEL_TO_WORLD = {"axial": (0, 1, 2), "coronal": (0, 2, 1), "sagittal": (1, 2, 0)}
PAD = 12  # voxels (mm) of room around the template for the synthetic scalp
SCALES = (20.0, 255.0, 1000.0, 4000.0, 10000.0)


def load_template() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T1 in [0, 1], brain probability GM+WM, affine) of nilearn's 1 mm MNI152 2009 template."""
    try:
        from nilearn import datasets
    except ImportError as error:  # optional extra
        raise SystemExit("the example data needs nilearn: pip install -r requirements-example.txt") from error
    t1 = datasets.load_mni152_template(resolution=1)
    gm = datasets.load_mni152_gm_template(resolution=1)
    wm = datasets.load_mni152_wm_template(resolution=1)
    image = np.asarray(t1.get_fdata(), dtype=np.float32)
    brain = np.asarray(gm.get_fdata(), dtype=np.float32) + np.asarray(wm.get_fdata(), dtype=np.float32)
    affine = t1.affine.astype(np.float64)
    affine[:3, 3] -= affine[:3, :3] @ np.full(3, PAD)  # room for the scalp
    return np.pad(image, PAD), np.pad(brain, PAD), affine


def add_scalp(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The template with a synthetic skull (dark) and scalp/fat (bright) shell around the stripped head."""
    head = image > 0.02
    outside = ndimage.distance_transform_edt(~head)  # mm at 1 mm
    skull_end = rng.uniform(4.0, 6.0)
    scalp_end = skull_end + rng.uniform(4.0, 7.0)
    texture = ndimage.gaussian_filter(rng.normal(0.0, 1.0, image.shape).astype(np.float32), 2.0)
    texture /= texture.std() + 1e-6
    out = image.copy()
    skull = (outside > 0) & (outside <= skull_end)
    scalp = (outside > skull_end) & (outside <= scalp_end)
    out[skull] = np.clip(0.08 + 0.03 * texture[skull], 0.0, None)
    out[scalp] = np.clip(rng.uniform(0.65, 0.9) + 0.08 * texture[scalp], 0.0, None)
    return out


def random_deformation(rng: np.random.Generator, centre: np.ndarray) -> np.ndarray:
    """4x4 world->world: scale, shear and rotation about ``centre``, plus a shift."""
    angles = np.deg2rad(rng.uniform(-12.0, 12.0, 3))
    rotation = np.eye(3)
    for axis, angle in enumerate(angles):
        c, s = np.cos(angle), np.sin(angle)
        i, j = [a for a in range(3) if a != axis]
        r = np.eye(3)
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        rotation = rotation @ r
    shear = np.eye(3) + np.triu(rng.uniform(-0.05, 0.05, (3, 3)), 1)
    linear = rotation @ shear @ np.diag(rng.uniform(0.9, 1.1, 3))
    transform = np.eye(4)
    transform[:3, :3] = linear
    transform[:3, 3] = centre - linear @ centre + rng.uniform(-8.0, 8.0, 3)
    return transform


def case_geometry(rng: np.random.Generator, orientation: str, world_min: np.ndarray, world_max: np.ndarray):
    """(shape, affine, spacing) of one acquisition covering a randomly cropped part of the world box."""
    in_plane = rng.uniform(0.9, 1.5)
    thick = rng.choice([rng.uniform(1.0, 1.5), rng.uniform(2.0, 3.0)], p=[0.25, 0.75])
    spacing = np.array([in_plane, in_plane * rng.uniform(1.0, 1.1), thick])
    axes = VOXEL_TO_WORLD[orientation]
    extent = world_max - world_min
    low = world_min + rng.uniform(0.0, 0.12, 3) * extent
    high = world_max - rng.uniform(0.0, 0.12, 3) * extent
    if rng.random() < 0.3:  # field of view that cuts the top of the head
        high[2] -= rng.uniform(0.05, 0.12) * extent[2]
    affine = np.eye(4)
    affine[:3, :3] = 0.0
    shape = []
    for voxel_axis, world_axis in enumerate(axes):
        size = int(np.ceil((high[world_axis] - low[world_axis]) / spacing[voxel_axis]))
        shape.append(size)
        if rng.random() < 0.5:  # this axis runs from high to low world coordinates
            affine[world_axis, voxel_axis] = -spacing[voxel_axis]
            affine[world_axis, 3] = low[world_axis] + (size - 1) * spacing[voxel_axis]
        else:
            affine[world_axis, voxel_axis] = spacing[voxel_axis]
            affine[world_axis, 3] = low[world_axis]
    return tuple(shape), affine, spacing


def bias_field(shape: tuple[int, ...], rng: np.random.Generator, strength: float) -> np.ndarray:
    """exp of a random low-order polynomial over the volume, roughly within ``1 +/- strength``."""
    coords = np.meshgrid(*[np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in shape], indexing="ij")
    log_field = np.zeros(shape, dtype=np.float32)
    for i in range(3):
        log_field += rng.uniform(-1, 1) * coords[i] + 0.5 * rng.uniform(-1, 1) * coords[i] ** 2
        log_field += 0.5 * rng.uniform(-1, 1) * coords[i] * coords[(i + 1) % 3]
    log_field *= strength / (np.abs(log_field).max() + 1e-6)
    return np.exp(log_field)


def make_case(template, index: int, seed: int, orientation: str, noisy: bool) -> dict:
    image_t, brain_t, affine_t = template
    rng = np.random.default_rng([seed, index])
    head = add_scalp(image_t, rng)
    inside = np.argwhere(brain_t > 0.5)
    centre = nib.affines.apply_affine(affine_t, inside.mean(0))
    occupied = np.argwhere(head > 0.02)
    world_min = nib.affines.apply_affine(affine_t, occupied.min(0)) - 4.0
    world_max = nib.affines.apply_affine(affine_t, occupied.max(0)) + 4.0
    shape, affine, spacing = case_geometry(rng, orientation, world_min, world_max)

    # output voxel -> world -> (undeformed) world -> template voxel
    deform = random_deformation(rng, centre)
    to_template = np.linalg.inv(affine_t) @ np.linalg.inv(deform) @ affine
    # thick slices average the anatomy along the slice axis (world axis of the last voxel axis)
    slice_world_axis = VOXEL_TO_WORLD[orientation][2]
    sigma = [0.0, 0.0, 0.0]
    sigma[slice_world_axis] = max(0.0, (spacing[2] - 1.0) / 2.355)
    head_blurred = ndimage.gaussian_filter(head, sigma) if spacing[2] > 1.0 else head
    image = ndimage.affine_transform(head_blurred, to_template[:3, :3], to_template[:3, 3], shape, order=1)
    brain = ndimage.affine_transform(brain_t, to_template[:3, :3], to_template[:3, 3], shape, order=1)
    label = (brain > 0.5).astype(np.uint8)

    image = np.clip(image, 0.0, None) * bias_field(shape, rng, rng.uniform(0.15, 0.3))
    scale = float(SCALES[int(rng.integers(len(SCALES)))])
    if noisy:  # magnitude of complex Gaussian noise: Rician, fills the background
        sd = rng.uniform(0.02, 0.05)
        image = np.hypot(image + rng.normal(0.0, sd, shape), rng.normal(0.0, sd, shape))
    image = (image * scale).astype(np.float32)
    return {
        "image": image,
        "label": label,
        "affine": affine,
        "orientation": orientation,
        "spacing": [round(float(s), 3) for s in spacing],
        "shape": list(shape),
        "scale": scale,
        "noisy": noisy,
    }


def build(output_dir: str, num_cases: int = 8, num_test: int = 3, seed: int = 0) -> list[dict]:
    """Write ``num_cases`` cases, the last ``num_test`` of them to imagesTs/labelsTs; return their descriptions."""
    if not 1 <= num_test < num_cases:
        raise SystemExit(f"num_test={num_test}: need 1 <= num_test < num_cases ({num_cases})")
    root = Path(output_dir)
    template = load_template()
    rng = np.random.default_rng(seed)
    # each orientation among training and test cases; noise in about half of each
    orientations = [ORIENTATIONS[(i + seed) % 3] for i in range(num_cases)]
    noisy = [bool(v) for v in rng.permutation([i % 2 for i in range(num_cases)])]
    described = []
    for index in range(num_cases):
        split = "Ts" if index >= num_cases - num_test else "Tr"
        name = f"mni_{index:03d}"
        case = make_case(template, index, seed, orientations[index], noisy[index])
        (root / f"images{split}").mkdir(parents=True, exist_ok=True)
        (root / f"labels{split}").mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(case["image"], case["affine"]), root / f"images{split}" / f"{name}_0000.nii.gz")
        nib.save(nib.Nifti1Image(case["label"], case["affine"]), root / f"labels{split}" / f"{name}.nii.gz")
        info = {
            "case": name,
            "split": split,
            **{k: case[k] for k in ("orientation", "spacing", "shape", "scale", "noisy")},
        }
        described.append(info)
        logger.info("%s", info)
    (root / "cases.json").write_text(json.dumps(described, indent=1) + "\n")
    return described


def main(argv=None) -> None:
    parser = ToolArgumentParser(prog="python -m scripts.tools.prepare_example_data", description=__doc__.split("\n")[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--num_cases", type=int, default=8)
    parser.add_argument("--num_test", type=int, default=3, help="the last cases go to imagesTs/labelsTs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build(args.output_dir, args.num_cases, args.num_test, args.seed)


if __name__ == "__main__":
    main()
