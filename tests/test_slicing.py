import torch

from scripts.networks.slicing import SlicePrepareBatch, volumes_to_slices


def test_volumes_to_slices_shape_and_order():
    volumes = torch.arange(2 * 1 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 1, 3, 4, 5)
    slices = volumes_to_slices(volumes)
    assert slices.shape == (10, 1, 3, 4)
    for b in range(2):
        for d in range(5):
            assert torch.equal(slices[b * 5 + d], volumes[b, :, :, :, d])


def test_prepare_batch_flattens_image_and_label():
    batch = {"image": torch.randn(2, 1, 8, 8, 4), "label": torch.randint(0, 2, (2, 1, 8, 8, 4)).float()}
    image, label = SlicePrepareBatch()(batch, torch.device("cpu"))
    assert image.shape == label.shape == (8, 1, 8, 8)
    assert torch.equal(label[5], batch["label"][1, :, :, :, 1])
