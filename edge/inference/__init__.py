"""Inference backends behind one interface: `load_backend(config.inference)`."""

from edge.inference.base import InferenceBackend, InferenceError
from edge.inference.factory import available_backends, load_backend

__all__ = ["InferenceBackend", "InferenceError", "available_backends", "load_backend"]
