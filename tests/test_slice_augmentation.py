import math

import pytest
import torch

from scripts.networks.slicing import PatchPrepareBatch, SlicePrepareBatch
from scripts.transforms.slice_augmentation import SliceAugmentation, affine_grid, in_plane_axes

NOTHING = dict(flip_prob=0, rotate_prob=0, zoom_prob=0, translate_prob=0, scale_prob=0, shift_prob=0, noise_prob=0)


def asymmetric_slices(n: int = 8, size: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    label = torch.zeros(n, 1, size, size)
    label[:, :, 3:10, 4:15] = 1  # off-centre rectangle: every flip or turn moves it
    image = label * 4.0 + torch.linspace(-1, 1, size)[None, None, :, None]
    return image, label


def test_with_every_probability_zero_slices_come_back_unchanged():
    image, label = asymmetric_slices()
    out_image, out_label = SliceAugmentation(**NOTHING)(image, label)
    assert torch.allclose(out_image, image, atol=1e-5) and torch.equal(out_label, label)


def test_a_certain_flip_of_both_axes_equals_torch_flip():
    image, label = asymmetric_slices()
    out_image, out_label = SliceAugmentation(**{**NOTHING, "flip_prob": 1.0})(image, label)
    assert torch.allclose(out_image, image.flip(2, 3), atol=1e-5) and torch.equal(out_label, label.flip(2, 3))


def test_each_slice_gets_its_own_draw_and_image_and_label_move_together():
    torch.manual_seed(0)
    image, label = asymmetric_slices(n=64)
    out_image, out_label = SliceAugmentation(**{**NOTHING, "flip_prob": 0.5, "rotate_prob": 1.0, "zoom_prob": 1.0})(
        image, label
    )
    distinct = {tuple(s.flatten().tolist()) for s in out_label}
    assert len(distinct) > 32  # not one transform for the whole batch
    assert set(out_label.unique().tolist()) <= {0.0, 1.0} and out_label.dtype == label.dtype
    rows, cols = torch.arange(24.0)[:, None], torch.arange(24.0)[None, :]
    for img, lab in zip(out_image[:, 0], out_label[:, 0], strict=True):
        bright = (img > 2.0).float()  # the image's rectangle, found independently of the label
        centre_label = ((lab * rows).sum() / lab.sum(), (lab * cols).sum() / lab.sum())
        centre_image = ((bright * rows).sum() / bright.sum(), (bright * cols).sum() / bright.sum())
        assert math.dist(centre_label, centre_image) < 1.0


def test_draws_follow_torch_seed():
    image, label = asymmetric_slices()
    augment = SliceAugmentation()
    torch.manual_seed(3)
    first = augment(image, label)
    torch.manual_seed(3)
    second = augment(image, label)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_intensity_changes_only_touch_the_image():
    image, label = asymmetric_slices()
    out_image, out_label = SliceAugmentation(**{**NOTHING, "scale_prob": 1, "shift_prob": 1, "noise_prob": 1})(
        image, label
    )
    assert torch.equal(out_label, label) and not torch.allclose(out_image, image)


def test_patches_move_every_slice_alike():
    image, label = asymmetric_slices(n=4)
    image5, label5 = (t[..., None].repeat(1, 1, 1, 1, 6) for t in (image, label))  # 6 identical slices per patch
    torch.manual_seed(1)
    out_image, out_label = SliceAugmentation(**{**NOTHING, "flip_prob": 0.5, "rotate_prob": 1.0})(image5, label5)
    assert out_image.shape == image5.shape and out_label.shape == label5.shape
    assert torch.equal(out_label, out_label[..., :1].expand_as(out_label))
    assert not torch.equal(out_label, label5)


def test_mismatched_image_and_label_are_refused():
    with pytest.raises(ValueError, match="differ"):
        SliceAugmentation()(torch.zeros(2, 1, 8, 8), torch.zeros(3, 1, 8, 8))


def test_prepare_batches_hand_their_output_to_the_augmentation():
    seen = []

    def record(image, label, in_plane=None):
        seen.append((image.shape, label.shape))
        return image + 1, label

    batch = {"image": torch.zeros(2, 1, 8, 8, 4), "label": torch.zeros(2, 1, 8, 8, 4)}
    image, _ = SlicePrepareBatch(record)(batch, torch.device("cpu"))
    assert seen[-1] == ((8, 1, 8, 8), (8, 1, 8, 8)) and torch.all(image == 1)
    image, _ = PatchPrepareBatch(record)(batch, torch.device("cpu"))
    assert seen[-1] == ((2, 1, 8, 8, 4), (2, 1, 8, 8, 4)) and torch.all(image == 1)


def test_affine_grid_is_torchs_on_non_square_slices():
    theta = SliceAugmentation(rotate_prob=1.0, zoom_prob=1.0).affine(6, 40, 52).float()
    expected = torch.nn.functional.affine_grid(theta, [6, 1, 40, 52], align_corners=False)
    assert torch.allclose(affine_grid(theta, 40, 52), expected, atol=1e-6)


def test_a_shift_moves_image_and_label_alike_and_pads_the_image_with_its_background():
    image, label = asymmetric_slices(n=4)
    image = image - 3.0  # z-scored: the background is negative, 0 would be mid-grey tissue
    augment = SliceAugmentation(**{**NOTHING, "translate_prob": 1.0, "translate_range": 0.25})
    out_image, out_label = augment(image, label)
    for img, lab, src in zip(out_image[:, 0], out_label[:, 0], image[:, 0], strict=True):
        rows, cols = torch.nonzero(lab, as_tuple=True)
        assert (rows.float().mean(), cols.float().mean()) != (6.0, 9.0)  # the rectangle moved ...
        assert lab.sum() > 0 and ((img > -1.0) == (lab > 0)).float().mean() > 0.97  # ... with the image's rectangle
        assert img.min() >= src.min() - 1e-4  # the uncovered border is the slice's lowest value, not 0
        assert (img <= src.min() + 1e-4).sum() > 0


def test_a_zoom_out_pads_with_the_background():
    image = torch.full((2, 1, 16, 16), 2.0)
    image[:, :, 0, 0] = -3.0
    out, _ = SliceAugmentation(**{**NOTHING, "zoom_prob": 1.0, "zoom_range": (0.5, 0.5)})(
        image, torch.zeros(2, 1, 16, 16)
    )
    assert torch.allclose(out[:, :, 0, 8], torch.full((2, 1), -3.0)) and out.max() <= 2.0 + 1e-4


def test_an_elastic_deformation_is_smooth_moves_image_and_label_alike_and_only_when_drawn():
    torch.manual_seed(0)
    size = 64
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    label = (((rows - 32) ** 2 + (cols - 32) ** 2) < 20**2).float()[None, None].repeat(16, 1, 1, 1)
    image = label * 4.0 + 0.1
    augment = SliceAugmentation(**{**NOTHING, "elastic_prob": 0.5, "elastic_magnitude": 0.05})
    out_image, out_label = augment(image, label)
    moved = (out_label != label).flatten(1).sum(1)
    assert 0 < int((moved > 0).sum()) < 16  # some slices deformed, some not
    assert ((out_image > 2.0) == (out_label > 0.5)).float().mean() > 0.99
    # smooth: a disk stays one blob without holes, its area within a few percent
    from scipy import ndimage

    for deformed in out_label[:, 0].numpy() > 0.5:
        assert ndimage.label(deformed)[1] == 1 and ndimage.binary_fill_holes(deformed).sum() == deformed.sum()
        assert abs(deformed.sum() / label[0, 0].sum().item() - 1) < 0.15
    offsets = augment.displacement(4, size, size)
    # neighbouring offsets differ by well under a pixel (2 / size in normalised coordinates): no folding
    assert offsets.shape == (4, size, size, 2) and float(offsets.diff(dim=1).abs().max()) < 1 / size
    # off by default: no draws, so the other augmentations draw as before
    torch.manual_seed(1)
    assert SliceAugmentation(**NOTHING).displacement(4, size, size) is None
    after = torch.rand(1)
    torch.manual_seed(1)
    assert torch.equal(after, torch.rand(1))


def test_mirror_axes_keep_a_left_right_flip_out_whatever_plane_the_slice_lies_in():
    """Lateralised labels (left and right structures of their own): no slice is mirrored along the left-right axis,
    which runs along the rows of axial and coronal slices (RAS, the normal moved last) and is the normal of sagittal
    ones, whose two in-plane axes may both flip."""
    image, label = asymmetric_slices(n=3)
    normals = torch.tensor([2, 1, 0])  # axial, coronal, sagittal
    kept = SliceAugmentation(**{**NOTHING, "flip_prob": 1.0}, mirror_axes=["AP", "SI"])
    out, out_label = kept(image, label, in_plane_axes(normals))
    for i, expected in enumerate([image[0].flip(-1), image[1].flip(-1), image[2].flip(-1).flip(-2)]):
        assert torch.allclose(out[i], expected, atol=1e-5), i
    everything, _ = SliceAugmentation(**{**NOTHING, "flip_prob": 1.0})(image, label, in_plane_axes(normals))
    assert torch.allclose(everything[0], image[0].flip(-1).flip(-2), atol=1e-5)  # by default rows flip too


def test_a_mirror_axis_left_out_needs_the_slices_normals():
    with pytest.raises(ValueError, match="slices' axes are not known"):
        SliceAugmentation(mirror_axes=["AP", "SI"])(*asymmetric_slices(n=2))
    with pytest.raises(ValueError, match=r"mirror_axes: \['XY'\] unknown"):
        SliceAugmentation(mirror_axes=["XY"])
