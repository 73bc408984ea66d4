import torch

from scripts.networks.context_slices import (
    ContextSliceInferer,
    ContextSlicePrepareBatch,
    context_stack,
    slab_to_channels,
)


def numbered_volume(depth=4):
    """[1, 1, 2, 2, D] whose slice d is filled with the value d."""
    return torch.arange(depth, dtype=torch.float32).view(1, 1, 1, 1, depth).expand(1, 1, 2, 2, depth).clone()


def test_stacking_by_hand_including_first_and_last_slice():
    stack = context_stack(numbered_volume(4), context_slices=1)
    assert stack.shape == (4, 3, 2, 2)
    by_hand = [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]]  # edges replicated
    assert [s[:, 0, 0].tolist() for s in stack] == by_hand
    two = context_stack(numbered_volume(4), context_slices=2)
    assert two[0, :, 0, 0].tolist() == [0, 0, 0, 1, 2] and two[3, :, 0, 0].tolist() == [1, 2, 3, 3, 3]


def test_partial_range_and_batches_are_volume_major():
    volumes = torch.cat([numbered_volume(5), numbered_volume(5) + 10])
    stack = context_stack(volumes, 1, start=3, stop=5)
    assert [s[:, 0, 0].tolist() for s in stack] == [[2, 3, 4], [3, 4, 4], [12, 13, 14], [13, 14, 14]]


def test_prepare_batch_uses_the_centre_label_slice():
    slabs = numbered_volume(5)
    label = slabs.clone() * 100
    image, target = ContextSlicePrepareBatch()({"image": slabs, "label": label}, torch.device("cpu"))
    assert torch.equal(image, slab_to_channels(slabs)) and image.shape == (1, 5, 2, 2)
    assert target.shape == (1, 1, 2, 2) and float(target.max()) == 200.0


def test_inferer_matches_per_slice_application_in_any_chunking():
    torch.manual_seed(0)
    network = torch.nn.Conv2d(3, 1, 3, padding=1)
    volume = torch.randn(2, 1, 8, 8, 7)
    expected = torch.stack([network(context_stack(volume, 1, d, d + 1)).reshape(2, 1, 8, 8) for d in range(7)], -1)
    for chunk in (1, 3, 7, 50):
        with torch.no_grad():
            got = ContextSliceInferer(1, slice_batch=chunk)(volume, network)
        assert torch.allclose(got, expected.detach(), atol=1e-6), chunk


def test_inferer_returns_the_input_dtype_under_autocast():
    # fp16/bf16 logits would overflow the validation loss's sums over a whole scan (as SliceInferer, float32 out)
    network = torch.nn.Conv2d(1, 1, 3, padding=1)
    volume = torch.randn(1, 1, 16, 12, 5)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert network(volume[..., 0]).dtype == torch.bfloat16
        pred = ContextSliceInferer(0, slice_batch=2)(volume, network)
    assert pred.dtype == torch.float32 and pred.shape == (1, 1, 16, 12, 5)


def test_inferer_gives_the_network_plain_tensors_for_a_metatensor_scan():
    from monai.data import MetaTensor

    seen = []

    class Recording(torch.nn.Conv2d):
        def forward(self, x):
            seen.append(type(x))
            return super().forward(x)

    torch.manual_seed(0)
    network = Recording(1, 1, 3, padding=1)
    volume = torch.randn(1, 1, 8, 6, 5)
    scan = MetaTensor(volume.clone(), affine=torch.diag(torch.tensor([2.0, 1, 1, 1])))
    with torch.no_grad():
        plain = ContextSliceInferer(0, slice_batch=2)(volume, network)
        meta = ContextSliceInferer(0, slice_batch=2)(scan, network)
    assert seen and all(t is torch.Tensor for t in seen)
    # the prediction keeps the scan's metadata, which Invertd needs to bring it back to the scan's grid
    assert isinstance(meta, MetaTensor) and torch.equal(meta.affine, scan.affine)
    assert torch.equal(meta.as_tensor(), plain)
