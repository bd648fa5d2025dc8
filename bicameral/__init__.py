"""The bicameral network zoo (thesis Chapter 4), its losses, checkpoints and ONNX export.

Needs torch (the `train` extra); the appliance reads exported models with `binpick_core.model_file`.
"""

from bicameral.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from bicameral.init import initialise
from bicameral.losses import MU, bicameral_loss, boundary_loss, occlusion_loss
from bicameral.networks import (
    INPUT_CHANNELS,
    VARIANTS,
    WIDTHS,
    BicameralNet,
    NetworkConfig,
    VariantSpec,
    build_network,
    count_parameters,
)

__all__ = [
    "INPUT_CHANNELS",
    "MU",
    "VARIANTS",
    "WIDTHS",
    "BicameralNet",
    "CheckpointError",
    "NetworkConfig",
    "VariantSpec",
    "bicameral_loss",
    "boundary_loss",
    "build_network",
    "count_parameters",
    "initialise",
    "load_checkpoint",
    "occlusion_loss",
    "read_checkpoint",
    "save_checkpoint",
]
