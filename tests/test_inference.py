"""configs/inference.json: masks on each scan's own grid, flip TTA, largest component, bad input, config parity."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, ConfigWorkflow
from monai.inferers import SimpleInferer
from scipy import ndimage

from scripts.data.cases import DatasetError
from scripts.data.inference_cases import find_images
from scripts.data.scan_check import ScanError, check_scan
from scripts.networks.flip_tta import FlipTTAInferer, with_flip_tta
from scripts.networks.weights import CheckpointError, load_weights
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


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return 2.0 * (a & b).sum() / (a.sum() + b.sum())


def save(path: Path, array: np.ndarray, affine: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(array, affine), path)
    return path


def infer(bundle_root: Path, dataset_dir: Path, output_dir: Path, **overrides) -> ConfigWorkflow:
    workflow = ConfigWorkflow(
        config_file=INFERENCE_CONFIG,
        meta_file=METADATA,
        logging_file=LOGGING,
        workflow_type="infer",
        bundle_root=str(bundle_root),
        dataset_dir=str(dataset_dir),
        output_dir=str(output_dir),
        **TRAINED,
        **overrides,
    )
    workflow.initialize()
    assert not workflow.check_properties()
    workflow.run()
    workflow.finalize()
    return workflow


def load(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


# --- the config -------------------------------------------------------------------------------------------------
def test_slices_go_through_the_network_slice_batch_at_a_time():
    parser = ConfigParser()
    parser.read_config(INFERENCE_CONFIG)
    parser.update({"spatial_size": 16, "slice_batch": 4, "inference_planes": ["axial"], "tta": False})
    inferer = parser.get_parsed_content("inferer")
    seen = []

    def network(x):
        seen.append(tuple(x.shape))
        return x * 2

    volume = torch.randn(1, 1, 16, 16, 10)
    out = inferer(volume, network)
    assert seen == [(4, 1, 16, 16), (4, 1, 16, 16), (2, 1, 16, 16)]
    assert torch.allclose(out, volume * 2)


def test_every_plane_is_predicted_and_its_logits_come_back_to_the_scans_grid():
    parser = ConfigParser()
    parser.read_config(INFERENCE_CONFIG)
    parser.update({"spatial_size": 16, "slice_batch": 64, "tta": False})
    inferer = parser.get_parsed_content("inferer")
    seen = []

    def network(x):  # marks which plane it saw by the input's in-plane shape, and doubles it
        seen.append(tuple(x.shape))
        return x * 2

    # logits within +-2: the mean of the planes' probabilities comes back as logits through float32 sigmoid and logit,
    # exact to ~1e-6 there (a randn volume reaches |logit| 8, where that round trip alone erred by 9e-5: a flaky test)
    volume = torch.rand(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert torch.allclose(inferer(volume, network), volume * 2, atol=1e-5)  # three planes, each inverted exactly
    assert seen == [(16, 1, 16, 16)] * 3
    # a non-cubic volume: each plane's slices are fitted into 16 x 16, the output is on the input's grid
    seen.clear()
    flat = torch.ones(1, 1, 8, 16, 4)
    out = inferer(flat, network)
    assert out.shape == flat.shape and seen == [(4, 1, 16, 16), (16, 1, 16, 16), (8, 1, 16, 16)]
    assert torch.allclose(out, flat * 2, atol=1e-5)


# --- flip TTA ---------------------------------------------------------------------------------------------------
def test_flip_tta_averages_the_four_flips_and_is_flip_equivariant():
    torch.manual_seed(0)
    net = torch.nn.Conv3d(1, 1, kernel_size=(3, 2, 1), padding="same")  # no symmetry of its own
    x = torch.randn(1, 1, 8, 6, 3)
    tta = FlipTTAInferer(SimpleInferer())
    with torch.no_grad():
        expected = sum(torch.flip(net(torch.flip(x, d)), d) for d in [(), (2,), (3,), (2, 3)]) / 4
        out = tta(x, net)
        assert torch.allclose(out, expected, atol=1e-6)
        for dims in [(2,), (3,)]:
            assert torch.allclose(tta(torch.flip(x, dims), net), torch.flip(out, dims), atol=1e-6)
            assert (net(torch.flip(x, dims)) - torch.flip(net(x), dims)).abs().max() > 1e-3  # plain net is not
    inner = SimpleInferer()
    assert with_flip_tta(inner, "false") is inner and isinstance(with_flip_tta(inner, "true"), FlipTTAInferer)


# --- whole scans, through the CLI -------------------------------------------------------------------------------
def test_cli_predicts_non_ras_anisotropic_scans_on_their_own_grid(trained_bundle, tmp_path):
    """The README command: default checkpoint <bundle_root>/models/model.pt, mixed names and layouts."""
    scans = tmp_path / "imagesTs"
    scans.mkdir()
    labels = {}
    # coronal acquisition with 3 mm slices; sagittal with thick slices and no _0000; 4D (H, W, D, 1) with an odd name
    for case, file_name, (shape, spacing, axes), fourth in [
        ("cor", "cor_0000.nii.gz", ((40, 36, 12), (0.9, 0.9, 3.0), (0, 2, 1)), False),
        ("sag", "sag.nii.gz", ((14, 44, 40), (2.5, 1.0, 1.1), (2, 1, 0)), False),
        ("odd.name 01", "odd.name 01_0000.nii.gz", ((36, 40, 16), (1.1, 0.8, 2.0), (0, 1, 2)), True),
    ]:
        image, label = blob_volume(shape, 500.0, 100 + len(labels))
        affine = affine_for(spacing, axes)
        save(scans / file_name, image[..., None] if fourth else image, affine)
        labels[case] = (label, affine, image.shape + ((1,) if fourth else ()))
    out = tmp_path / "out"
    result = run_module(
        [
            *bundle_run(INFERENCE_CONFIG),
            "--bundle_root",
            str(trained_bundle["root"]),
            "--dataset_dir",
            str(scans),
            "--output_dir",
            str(out),
            *cli_args(TRAINED),
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{case}.nii.gz" for case in labels)
    for case, (label, affine, shape) in labels.items():
        mask_img = nib.load(out / f"{case}.nii.gz")
        mask = np.asarray(mask_img.dataobj)
        assert mask.shape == shape
        assert np.allclose(mask_img.affine, affine, atol=1e-5)
        assert nib.aff2axcodes(mask_img.affine) == nib.aff2axcodes(affine)
        assert mask_img.get_data_dtype() == np.uint8 and set(np.unique(mask)) <= {0, 1}
        score = dice(mask.reshape(label.shape), label)
        print(f"{case}: Dice {score:.4f}")
        assert score >= 0.9, (case, score)
    progress = re.findall(r"\[(\d)/3\] predicted (.+?): ([\d.]+) s", result.stdout)
    assert sorted(p[1] for p in progress) == sorted(labels) and [p[0] for p in progress] == ["1", "2", "3"]
    total = re.search(r"Predicted 3 case\(s\) in ([\d.]+) s \(([\d.]+) s per case\)", result.stdout)
    assert total, result.stdout[-2000:]
    print(f"seconds per case: {total.group(2)} ({[p[2] for p in progress]})")

    def again(*extra: str) -> subprocess.CompletedProcess:
        return run_module(
            [
                *bundle_run(INFERENCE_CONFIG),
                "--bundle_root",
                str(trained_bundle["root"]),
                "--dataset_dir",
                str(scans),
                *extra,
                "--num_workers",
                "0",
            ]
        )

    # the same command again predicts nothing and leaves the masks alone; a deleted mask is predicted again
    written = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / "sag.nii.gz").unlink()
    result = again("--output_dir", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("exists, not predicted again (--overwrite true replaces it)") == 2
    assert re.findall(r"\[(\d)/1\] predicted (.+?):", result.stdout) == [("1", "sag")]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "sag.nii.gz"} == {
        k: v for k, v in written.items() if k != "sag.nii.gz"
    }
    result = again("--output_dir", str(out), "--overwrite", "true")
    assert result.returncode == 0 and "Predicted 3 case(s)" in result.stdout
    # an output folder that is the scans' folder is refused before anything is written; the scans are untouched
    before = {p.name: p.read_bytes() for p in scans.iterdir()}
    result = again("--output_dir", str(scans))
    assert result.returncode == 1
    assert (
        f"input error: {scans}: this is the folder of the scans to predict; pass another --output_dir" in result.stderr
    )
    assert "Traceback" not in result.stderr and {p.name: p.read_bytes() for p in scans.iterdir()} == before


# --- TTA, largest component and probabilities, in process ----------------------------------------------------------
@pytest.fixture
def tta_lcc_scans(tmp_path):
    """A RAS scan with square in-plane extent (fitted without padding, so mirroring commutes with the fitting),
    its mirror image, and a scan with a large and a small blob."""
    scans = tmp_path / "scans"
    scans.mkdir()
    affine = affine_for((1.0, 1.0, 2.0), (0, 1, 2))
    image, label = blob_volume((40, 40, 12), 300.0, 7)
    save(scans / "blob_0000.nii.gz", image, affine)
    save(scans / "mirror_0000.nii.gz", np.ascontiguousarray(image[::-1]), affine)
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in (48, 40, 12)], indexing="ij"), -1)
    big = (((grid - (14, 20, 6)) / (9, 9, 5)) ** 2).sum(-1) <= 1
    small = (((grid - (38, 20, 6)) / (4, 4, 3)) ** 2).sum(-1) <= 1
    rng = np.random.default_rng(3)
    two = ((0.3 + 0.7 * (big | small) + rng.normal(0, 0.05, big.shape)).clip(0) * 300.0).astype(np.float32)
    save(scans / "two_0000.nii.gz", two, affine)
    return scans, label, big


def test_tta_makes_the_prediction_mirror_consistent_and_lcc_keeps_the_largest_component(
    trained_bundle, tmp_path, tta_lcc_scans, one_torch_thread
):
    scans, label, big = tta_lcc_scans
    root = trained_bundle["root"]
    plain = infer(root, scans, tmp_path / "plain", save_probabilities=True, tta=False, postprocessing_lcc=False)
    tta = infer(root, scans, tmp_path / "tta", save_probabilities=True, tta=True, postprocessing_lcc=False)
    infer(root, scans, tmp_path / "lcc")  # no TTA and the largest component, holes filled, are the defaults
    assert isinstance(tta.parser.get_parsed_content("inferer").inferer, FlipTTAInferer)
    assert not isinstance(plain.parser.get_parsed_content("inferer").inferer, FlipTTAInferer)

    prob = {
        run: {c: load(tmp_path / run / "probabilities" / f"{c}.nii.gz") for c in ("blob", "mirror")}
        for run in ("plain", "tta")
    }
    assert nib.load(tmp_path / "tta" / "probabilities" / "blob.nii.gz").get_data_dtype() == np.float32
    assert 0.0 <= prob["tta"]["blob"].min() and prob["tta"]["blob"].max() <= 1.0
    # with TTA, predicting the mirrored scan gives the mirrored probabilities; without it, it does not
    tta_gap = np.abs(prob["tta"]["mirror"] - prob["tta"]["blob"][::-1]).max()
    plain_gap = np.abs(prob["plain"]["mirror"] - prob["plain"]["blob"][::-1]).max()
    print(f"mirror gap: TTA {tta_gap:.2e}, plain {plain_gap:.2e}")
    assert tta_gap < 1e-4 < plain_gap, (tta_gap, plain_gap)
    assert np.abs(prob["tta"]["blob"] - prob["plain"]["blob"]).max() > 1e-4
    # the mask is the thresholded probability, and TTA keeps it accurate
    assert np.array_equal(load(tmp_path / "tta" / "blob.nii.gz"), (prob["tta"]["blob"] > 0.5).astype(np.uint8))
    assert dice(load(tmp_path / "tta" / "blob.nii.gz"), label) >= 0.9

    # two blobs: both found without LCC; with it only the larger one, voxel for voxel, its enclosed holes filled
    structure = np.ones((3, 3, 3))
    two_plain = load(tmp_path / "plain" / "two.nii.gz")
    components, n = ndimage.label(two_plain, structure)
    print(f"components without LCC: {n}")
    assert n >= 2
    sizes = np.bincount(components.ravel())[1:]
    largest = ndimage.binary_fill_holes(components == 1 + np.argmax(sizes))
    two_lcc = load(tmp_path / "lcc" / "two.nii.gz")
    assert ndimage.label(two_lcc, structure)[1] == 1
    assert np.array_equal(two_lcc.astype(bool), largest)
    assert dice(two_lcc, big) >= 0.9
    assert not (tmp_path / "lcc" / "probabilities").exists()


def test_ckpt_path_takes_a_training_checkpoint(trained_bundle, tmp_path, one_torch_thread):
    best = next((trained_bundle["root"] / "runs").rglob("best.pth"))
    scans = tmp_path / "scans"
    scans.mkdir()
    image, label = blob_volume((36, 36, 10), 50.0, 11)
    save(scans / "case.nii.gz", image, affine_for((1.0, 1.0, 2.5), (0, 1, 2)))
    empty_root = tmp_path / "no_model_here"
    workflow = infer(empty_root, scans, tmp_path / "out", ckpt_path=str(best))
    expected = torch.load(best, weights_only=True)["model_state"]
    for name, value in workflow.parser.get_parsed_content("network").state_dict().items():
        assert torch.equal(value.cpu(), expected[name])
    assert dice(load(tmp_path / "out" / "case.nii.gz"), label) >= 0.9


# --- bad input --------------------------------------------------------------------------------------------------
def test_bad_input_is_one_line_naming_the_path_and_the_fix(tmp_path, one_torch_thread):
    missing = tmp_path / "nope"
    with pytest.raises(DatasetError, match=f"{missing}: no such file or folder; set --dataset_dir to a NIfTI scan"):
        find_images(str(missing))
    (tmp_path / "root" / "imagesTs").mkdir(parents=True)
    (tmp_path / "root" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match=r"root: no .nii.gz or .nii scans found; use --dataset_dir .*imagesTs"):
        find_images(str(tmp_path / "root"))
    flat = tmp_path / "flat"
    flat.mkdir()
    affine = np.eye(4)
    save(flat / "a_0000.nii.gz", np.zeros((4, 4, 4), np.float32), affine)
    save(flat / "a.nii", np.zeros((4, 4, 4), np.float32), affine)
    with pytest.raises(DatasetError, match="both give the case id 'a'"):
        find_images(str(flat))
    (flat / "a.nii").unlink()
    save(flat / "A.nii", np.zeros((4, 4, 4), np.float32), affine)  # one file with a_0000.nii.gz's on macOS
    with pytest.raises(DatasetError, match=r"a_0000.nii.gz: case id 'a' differs from 'A' \(.*/A.nii\) only in letter"):
        find_images(str(flat))
    (flat / "A.nii").unlink()
    # a scan the network cannot take is listed (nothing is read here), then skipped by the scan check, which names it
    save(flat / "b_0000.nii.gz", np.zeros((4, 4, 4, 2), np.float32), affine)
    assert [item["case"] for item in find_images(str(flat))] == ["a", "b"]
    with pytest.raises(ScanError, match=r"shape \(4, 4, 4, 2\) is not 3D; give one 3D volume per file"):
        check_scan(flat / "b_0000.nii.gz")
    (flat / "b_0000.nii.gz").unlink()
    assert find_images(str(flat)) == [{"image": str(flat / "a_0000.nii.gz"), "case": "a"}]

    network = torch.nn.Conv2d(1, 1, 3)
    with pytest.raises(CheckpointError, match=f"{tmp_path / 'none.pt'}: checkpoint not found; train first"):
        load_weights(network, str(tmp_path / "none.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt: not a readable weights file"):
        load_weights(network, str(tmp_path / "junk.pt"))
    torch.save({"weight": torch.zeros(2, 1, 3, 3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other.pt: weights do not fit network_def"):
        load_weights(network, str(tmp_path / "other.pt"))

    # through the bundle, the same error as one line (not a later, obscure one) stops the run before any scan is
    # predicted (the scan check, which reads them, comes first: an all-zero scan would be skipped, not predicted)
    save(flat / "a_0000.nii.gz", np.random.default_rng(0).random((4, 4, 4), np.float32), affine)
    with pytest.raises(SystemExit, match="input error: .*models/model.pt: checkpoint not found; train first"):
        infer(tmp_path / "bundle", flat, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_parsing_and_checking_need_no_weights_file(tmp_path):
    """The model zoo's tools parse the network and check the properties of a bundle whose weights are not there yet."""
    scans = tmp_path / "scans"
    scans.mkdir()
    nib.save(nib.Nifti1Image(np.random.rand(8, 8, 8).astype(np.float32), np.eye(4)), scans / "a_0000.nii.gz")
    workflow = ConfigWorkflow(
        config_file=INFERENCE_CONFIG,
        meta_file=METADATA,
        logging_file=False,
        workflow_type="infer",
        bundle_root=str(tmp_path),
        dataset_dir=str(scans),
    )
    workflow.initialize()
    assert not workflow.check_properties()
    assert isinstance(workflow.parser.get_parsed_content("network"), torch.nn.Module)
    assert workflow.parser.get_parsed_content("handlers")[0].ckpt_path == str(tmp_path / "models" / "model.pt")
