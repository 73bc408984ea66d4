"""scripts/transforms/intensity.py: normalisations that agree across intensity scales and background noise."""

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from scripts.transforms.intensity import METHODS, NormaliseIntensityd, normalise, otsu_threshold


def head(noisy: bool, scale: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A bright 'brain' in a dimmer 'head' in a small part of the volume; background exactly 0, or noise."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, 40)] * 3, indexing="ij"), -1)
    r = np.sqrt((grid**2).sum(-1))
    brain, skin = r < 0.3, (r >= 0.3) & (r < 0.4)
    image = 0.8 * brain + 0.4 * skin + rng.normal(0, 0.03, r.shape) * (brain | skin)
    if noisy:
        image = np.hypot(image + rng.normal(0, 0.05, r.shape), rng.normal(0, 0.05, r.shape))
    return torch.tensor(image[None] * scale, dtype=torch.float32), torch.tensor(brain[None])


@pytest.mark.parametrize("method", METHODS)
def test_scale_does_not_matter(method):
    low, high = (normalise(head(True, s)[0], method) for s in (20.0, 10000.0))
    assert torch.allclose(low, high, atol=1e-3)


def test_foreground_zscore_is_robust_to_a_noise_filled_background_and_nonzero_zscore_is_not():
    (clean, brain), (noisy, _) = head(False, 1000.0), head(True, 1000.0)
    assert float((noisy == 0).float().mean()) == 0.0  # "nonzero" is the whole volume
    gap = {m: abs(float(normalise(clean, m)[brain].mean() - normalise(noisy, m)[brain].mean())) for m in METHODS}
    print(gap)
    assert gap["zscore_foreground"] < 0.2 and gap["percentile"] < 0.1
    assert gap["zscore_nonzero"] > 2 * gap["zscore_foreground"]


def test_otsu_separates_two_levels_and_meta_is_kept():
    values = torch.cat([torch.full((100,), 1.0), torch.full((50,), 5.0)])
    assert 1.0 <= otsu_threshold(values) < 5.0
    img = MetaTensor(head(True, 10.0)[0], affine=torch.diag(torch.tensor([2.0, 1.0, 1.0, 1.0])))
    out = NormaliseIntensityd("image", "zscore_foreground")({"image": img})["image"]
    assert isinstance(out, MetaTensor) and torch.equal(out.affine, img.affine) and out.dtype == torch.float32
    with pytest.raises(ValueError, match="intensity_normalisation='minmax'"):
        NormaliseIntensityd("image", "minmax")
