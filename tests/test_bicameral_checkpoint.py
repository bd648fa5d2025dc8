"""Checkpoint round trip, validation errors, and thesis initialisation (Xavier / VGG16 file)."""

from __future__ import annotations

import math

import pytest
import torch

from bicameral import CheckpointError, build_network, initialise, load_checkpoint, save_checkpoint
from bicameral.encoders import VGG16_TORCHVISION_CONV_INDEX, VGG16Encoder
from binpick_core.model_file import default_preprocess

PROVENANCE = {"dataset": "mikado-test", "iterations": 3, "git_commit": "abc123"}


def test_round_trip_rebuilds_identical_model(tmp_path) -> None:
    torch.manual_seed(0)
    model = initialise(build_network("m2_b2", 0.125, in_channels=4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    model(torch.randn(1, 4, 32, 32))[0].sum().backward()
    opt.step()
    path = save_checkpoint(
        tmp_path / "run" / "ckpt.pt", model, model.config, default_preprocess("rgbd"), PROVENANCE,
        optimizer_state=opt.state_dict(), extra={"step": 1},
    )  # fmt: skip
    loaded, data = load_checkpoint(path)
    assert loaded.config == model.config and not loaded.training
    x = torch.randn(1, 4, 48, 32)
    model.eval()
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model(x), loaded(x), strict=True))
    assert data["provenance"] == PROVENANCE and data["extra"] == {"step": 1}
    assert data["preprocess"]["mean"][3] == 1.0 and len(data["preprocess"]["std"]) == 4
    opt2 = torch.optim.SGD(loaded.parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(data["optimizer_state"])
    assert [p.name for p in tmp_path.joinpath("run").iterdir()] == ["ckpt.pt"]  # no temp file left


def test_wrapped_model_and_thesis_width_names(tmp_path) -> None:
    model = build_network("bicameral", "F25")
    wrapped = torch.nn.DataParallel(model)  # state-dict keys carry 'module.'
    config = {"variant": "bicameral", "width": "F25", "in_channels": 3, "encoder": "vgg16"}
    save_checkpoint(tmp_path / "w.pt", wrapped, config, default_preprocess("rgb"), {})
    loaded, data = load_checkpoint(tmp_path / "w.pt")
    assert data["config"]["width"] == 0.25 and "encoder.convs.0.weight" in data["state_dict"]
    with pytest.raises(TypeError, match="needs a BicameralNet"):
        save_checkpoint(tmp_path / "x.pt", torch.nn.Linear(1, 1), config, default_preprocess("rgb"), {})


def test_save_rejects_inconsistent_inputs(tmp_path) -> None:
    model = build_network("bicameral", 0.125)
    with pytest.raises(ValueError, match="does not describe this model"):
        wrong = {"variant": "cascaded", "width": 0.125, "in_channels": 3, "encoder": "vgg16"}
        save_checkpoint(tmp_path / "a.pt", model, wrong, default_preprocess("rgb"), {})
    with pytest.raises(ValueError, match=r"mean .* expected 3 finite numbers"):
        save_checkpoint(tmp_path / "a.pt", model, model.config, default_preprocess("rgbd"), {})
    with pytest.raises(TypeError, match="provenance must be JSON-serialisable"):
        save_checkpoint(tmp_path / "a.pt", model, model.config, default_preprocess("rgb"), {"t": object()})
    assert not (tmp_path / "a.pt").exists()


def test_load_errors_name_file_and_key(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match=r"is a folder, expected a checkpoint file \(\.pt or \.onnx\)"):
        load_checkpoint(tmp_path)
    torch.save(
        {"format": "binpick-checkpoint", "version": 1, "config": {"variant": "x"}}, tmp_path / "bad.pt"
    )
    with pytest.raises(CheckpointError, match="bad.pt.*'state_dict'"):
        load_checkpoint(tmp_path / "bad.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(tmp_path / "junk.pt")


def test_xavier_decoders(tmp_path) -> None:
    torch.manual_seed(0)
    model = initialise(build_network("bicameral", 0.25))
    conv = model.occlusion.stages[0].conv
    fan_in = conv.in_channels * 25
    fan_out = conv.out_channels * 25
    bound = math.sqrt(6 / (fan_in + fan_out))
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound
    assert torch.count_nonzero(conv.bias) == 0


def _torchvision_vgg16_state() -> dict[str, torch.Tensor]:
    """A state dict in torchvision's vgg16 layout (random values: no download here)."""
    g = torch.Generator().manual_seed(1)
    encoder = VGG16Encoder()
    state = {}
    for i, index in enumerate(VGG16_TORCHVISION_CONV_INDEX):
        conv = encoder.convs[i]
        state[f"features.{index}.weight"] = torch.randn(conv.weight.shape, generator=g)
        state[f"features.{index}.bias"] = torch.randn(conv.bias.shape, generator=g)
    state["classifier.0.weight"] = torch.zeros(4, 4)  # present in real files, ignored
    return state


@pytest.mark.parametrize("channels", [3, 1, 4])
def test_encoder_weights_from_torchvision_file(tmp_path, channels: int) -> None:
    state = _torchvision_vgg16_state()
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    model = initialise(build_network("shared_encoder", 1.0, in_channels=channels), encoder_weights=path)
    assert torch.equal(model.encoder.convs[12].weight, state["features.28.weight"])
    first = model.encoder.convs[0].weight
    if channels in (3, 4):
        assert torch.equal(first[:, :3], state["features.0.weight"])
    if channels in (1, 4):
        assert torch.allclose(first[:, -1], state["features.0.weight"].mean(dim=1))


def test_encoder_weights_errors(tmp_path) -> None:
    state = _torchvision_vgg16_state()
    del state["features.14.bias"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="lacks 'features.14.bias'"):
        initialise(build_network("bicameral", 1.0, device="meta"), encoder_weights=tmp_path / "partial.pth")
    torch.save(_torchvision_vgg16_state(), tmp_path / "ok.pth")
    with pytest.raises(ValueError, match="need width 1.0"):
        initialise(build_network("bicameral", 0.25), encoder_weights=tmp_path / "ok.pth")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        initialise(build_network("bicameral", 0.25), encoder_weights=tmp_path / "nope.pth")


def test_unreadable_checkpoints_are_named_in_one_line(tmp_path):
    from bicameral.checkpoint import CheckpointError, read_checkpoint

    cases = {
        "empty.pt": (b"", r"cannot be read: the file is empty \(0 bytes\)"),
        "model.pt": (
            b"\x08\x08\x12\x0ebinpick export\x1a\x03",
            "cannot be read: it looks like an ONNX model",
        ),
        "notes.pt": (b"garbage\n", "cannot be read: not a PyTorch checkpoint"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=message):
            read_checkpoint(tmp_path / name)
    # A real torch archive that weights_only refuses: torch's advice to load it unsafely is left out.
    torch.save({"format": "binpick-checkpoint", "x": _Unsafe()}, tmp_path / "unsafe.pt")
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(tmp_path / "unsafe.pt")
    assert "\n" not in str(info.value) and "weights_only=False" not in str(info.value)


class _Unsafe:
    """An arbitrary class: `torch.load(weights_only=True)` refuses to unpickle it."""


def test_an_atomic_write_over_a_folder_names_the_folder(tmp_path):
    from edge.atomic_file import write_atomically

    with pytest.raises(IsADirectoryError) as info:
        write_atomically(tmp_path, b"x")
    assert info.value.filename == str(tmp_path) and list(tmp_path.iterdir()) == []


def test_an_exported_model_is_readable_by_other_users(tmp_path):
    """The appliance runs as its own user: a model file written by an engineer must not be
    mkstemp's 0600 (write_atomically takes 0666 less the umask, or the replaced file's mode)."""
    import os

    from edge.atomic_file import write_atomically

    old = os.umask(0o022)
    try:
        write_atomically(tmp_path / "m.onnx", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "m.onnx").stat().st_mode & 0o777 == 0o644
