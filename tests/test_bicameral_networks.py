"""Network zoo: exact parameter counts (DESIGN.md), shapes, any input size, export-mode equality."""

from __future__ import annotations

import pytest
import torch

from bicameral import VARIANTS, build_network, count_parameters
from bicameral.encoders import VGG16Encoder

# DESIGN.md "Bicameral network, exactly": derived from the thesis's tables.
EXPECTED = [
    ("bicameral", "F100", 34_301_250),
    ("bicameral", "F75", 19_296_050),
    ("bicameral", "F50", 8_577_442),
    ("bicameral", "F25", 2_145_426),
    ("two_stream", "F100", 46_839_938),
    ("shared_encoder", "F100", 32_125_250),
    ("cascaded", "F100", 29_949_250),
    ("multi_task", "F100", 23_420_770),
    ("m3_b1", "F100", 23_548_802),
    ("m2_b2", "F100", 24_060_866),
    ("m1_b3", "F100", 26_108_994),
]


@pytest.mark.parametrize(("variant", "width", "expected"), EXPECTED)
def test_parameter_count_matches_design(variant: str, width: str, expected: int) -> None:
    assert count_parameters(build_network(variant, width, device="meta")) == expected


def test_vgg16_encoder_is_vgg16() -> None:
    # torchvision's vgg16().features has 14,714,688 parameters.
    assert count_parameters(VGG16Encoder()) == 14_714_688


def test_width_is_any_fraction() -> None:
    net = build_network("bicameral", 0.1, device="meta")
    assert net.encoder.convs[0].out_channels == 6  # round(64 * 0.1)
    assert count_parameters(net) < count_parameters(build_network("bicameral", "F25", device="meta"))


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_input_channels(channels: int) -> None:
    net = build_network("bicameral", 0.125, in_channels=channels).eval()
    b, o = net(torch.randn(1, channels, 32, 32))
    assert b.shape == o.shape == (1, 1, 32, 32)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_runs_any_size_and_export_mode_is_exact(variant: str) -> None:
    torch.manual_seed(0)
    net = build_network(variant, 0.125).eval()
    x = torch.randn(2, 3, 37, 50)  # not multiples of 16: padded then cropped back
    with torch.no_grad():
        b, o = net(x)
        net.set_export_mode(True)
        b2, o2 = net(x)
    assert b.shape == o.shape == (2, 1, 37, 50)
    assert torch.equal(b, b2) and torch.equal(o, o2)


def test_two_outputs_differ_in_how_they_depend_on_the_boundary_decoder() -> None:
    """Bicameral: occlusion depends on boundary stages; shared-encoder: it does not."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 32, 32)
    for variant, coupled in (("bicameral", True), ("shared_encoder", False)):
        net = build_network(variant, 0.125).eval()
        with torch.no_grad():
            _, before = net(x)
            net.boundary.stages[-1].conv.weight.add_(1.0)
            _, after = net(x)
        assert (not torch.equal(before, after)) == coupled, variant


def test_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    net = build_network("bicameral", 0.125)
    x = torch.randn(1, 3, 32, 32)
    net.train()
    assert not torch.equal(net(x)[0], net(x)[0])
    net.eval()
    assert torch.equal(net(x)[0], net(x)[0])


def test_densenet121_encoder_is_torchvision_architecture() -> None:
    from bicameral.encoders import DenseNet121Encoder

    # torchvision's densenet121().features has 6,953,856 parameters.
    assert count_parameters(DenseNet121Encoder()) == 6_953_856
    net = build_network("bicameral", 0.125, encoder="densenet121").eval()
    b, o = net(torch.randn(1, 3, 40, 24))
    assert b.shape == o.shape == (1, 1, 40, 24)


def test_bad_config_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown variant 'bicamera'"):
        build_network("bicamera")
    with pytest.raises(ValueError, match="in_channels"):
        build_network("bicameral", 0.25, in_channels=2)
    with pytest.raises(ValueError, match="unknown width 'F33'"):
        build_network("bicameral", "F33")
    with pytest.raises(ValueError, match=r"expected input \[N, 3, H, W\]"):
        build_network("bicameral", 0.125)(torch.zeros(1, 1, 32, 32))
