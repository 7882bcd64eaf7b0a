"""DiffAugment's transforms: shapes kept, gradients pass, each transform does what the paper's does."""

from __future__ import annotations

import pytest
import torch

from genlab.errors import GenlabError
from genlab.objectives import diffaugment


@pytest.mark.parametrize("name", list(diffaugment.POLICIES))
def test_each_policy_keeps_shape_and_passes_gradient(name):
    torch.manual_seed(0)
    x = (torch.rand(5, 3, 16, 16) * 2 - 1).requires_grad_(True)
    y = diffaugment.POLICIES[name](x)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not torch.equal(y.detach(), x.detach())  # it changed something


def test_translation_shifts_by_whole_pixels_and_fills_zeros():
    torch.manual_seed(1)
    x = torch.arange(1, 1 + 32 * 32, dtype=torch.float32).view(1, 1, 32, 32).repeat(8, 1, 1, 1)
    y = diffaugment.translation(x)
    for img in y[:, 0]:
        nonzero = img[img != 0]
        # every value present is an original pixel: a shift copies, it does not interpolate
        assert torch.isin(nonzero, x[0, 0].flatten()).all()
        # at most 1/8 of the side (4 px) is lost in each axis
        assert (img != 0).sum() >= (32 - 4) ** 2


def test_translation_of_zero_shift_is_identity():
    x = torch.rand(3, 2, 8, 8)
    assert torch.equal(diffaugment.translation(x, ratio=0.0), x)


def test_cutout_zeroes_a_square_of_half_the_side_at_most():
    torch.manual_seed(2)
    x = torch.ones(64, 1, 32, 32)
    zeros = (diffaugment.cutout(x) == 0).flatten(1).sum(1)
    assert zeros.max() == 16 * 16  # a whole square when it lies inside the image
    assert zeros.min() > 0 and (zeros < 16 * 16).any()  # and clipped where it runs over the border


def test_color_moves_a_flat_grey_image_by_its_brightness_alone():
    """Saturation and contrast scale deviations from a mean, which a flat grey image has none of; what is left
    is the brightness shift, one draw in [-0.5, 0.5] per image."""
    torch.manual_seed(3)
    x = torch.full((256, 3, 4, 4), 0.2)
    shift = diffaugment.color(x) - x
    per_image = shift.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-6)
    assert per_image.min() >= -0.5 and per_image.max() <= 0.5
    assert per_image[:, 0].std() > 0.2  # ~ 1/sqrt(12) for U(-0.5, 0.5): one draw per image, not one per batch


def test_color_scales_saturation_and_contrast_within_the_papers_ranges():
    torch.manual_seed(4)
    x = torch.rand(512, 3, 8, 8) * 2 - 1
    y = diffaugment.color(x)
    dev = lambda t: (t - t.mean(dim=(1, 2, 3), keepdim=True)).flatten(1).norm(dim=1)  # noqa: E731
    ratio = dev(y) / dev(x)
    # saturation in [0, 2] times contrast in [0.5, 1.5] bounds the change of spread by [0, 3]
    assert ratio.max() <= 3.0 + 1e-4 and ratio.min() >= 0.0
    assert ratio.min() < 0.5 and ratio.max() > 1.5


def test_parse_and_augment_in_order():
    assert diffaugment.parse("") == ()
    assert diffaugment.parse(" color, cutout ") == ("color", "cutout")
    torch.manual_seed(5)
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(diffaugment.augment(x, ()), x)
    torch.manual_seed(6)
    both = diffaugment.augment(x, ("color", "cutout"))
    torch.manual_seed(6)
    assert torch.equal(both, diffaugment.cutout(diffaugment.color(x)))


@pytest.mark.parametrize("policy, says", [("colour", "unknown policy 'colour'"),
                                          ("color,zoom,flip", "unknown policies 'zoom', 'flip'"),
                                          ("color,color", "names a policy twice")])
def test_parse_rejects_bad_policies(policy, says):
    with pytest.raises(GenlabError, match=says):
        diffaugment.parse(policy)
