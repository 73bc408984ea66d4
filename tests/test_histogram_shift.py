"""The random histogram shift leaves near-constant slices alone (MONAI's turns them into NaN) and remaps the rest."""

import torch
from monai.transforms import RandHistogramShift

from scripts.transforms.histogram_shift import SafeRandHistogramShift, SafeRandHistogramShiftd


def test_a_slice_of_one_value_give_or_take_rounding_stays_finite_and_unchanged():
    flat = torch.full((1, 128, 128, 1), -4.066082)
    flat[0, :3, 0, 0] = -4.066081  # what float32 padding of a z-scored volume looks like
    shift = SafeRandHistogramShift(num_control_points=(4, 10), prob=1.0)
    monai = RandHistogramShift(num_control_points=(4, 10), prob=1.0)
    nan_seen = False
    for seed in range(20):
        out = shift.set_random_state(seed)(flat)
        assert torch.equal(torch.as_tensor(out), flat)
        nan_seen |= not torch.isfinite(torch.as_tensor(monai.set_random_state(seed)(flat))).all().item()
    assert nan_seen  # the case this class exists for


def test_other_images_get_a_monotonic_remapping_of_their_range():
    ramp = torch.linspace(-2.0, 3.0, 400).reshape(1, 20, 20, 1)
    out = torch.as_tensor(
        SafeRandHistogramShiftd(keys="image", num_control_points=4, prob=1.0).set_random_state(1)({"image": ramp})[
            "image"
        ]
    ).flatten()
    assert torch.isfinite(out).all() and not torch.allclose(out, ramp.flatten())
    assert torch.all(out[1:] >= out[:-1] - 1e-6)
    assert abs(float(out[0]) + 2.0) < 1e-5 and abs(float(out[-1]) - 3.0) < 1e-5
