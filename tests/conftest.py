"""Test-wide fixtures: the GPU check's ranking-mode switch (scripts/gpu_check.sh; nothing there
changes a CPU run) and the CPU's subnormal mode restored after each test."""

from __future__ import annotations

import os

import numpy as np
import pytest

GRAPH_RANKING_ENV = "BINPICK_CUDA_GRAPH_RANKING"


@pytest.fixture(autouse=True)
def cuda_ranking_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """BINPICK_CUDA_GRAPH_RANKING=0/1 makes the CUDA ranking's direct or graph mode the default
    for the test (every CudaRanker() and the appliance's ranker), so that scripts/gpu_check.sh runs
    the GPU tests once per mode; unset, the library's default stands."""
    value = os.environ.get(GRAPH_RANKING_ENV, "")
    if value == "":
        return
    if value not in ("0", "1"):
        raise pytest.UsageError(f"{GRAPH_RANKING_ENV}={value!r}: expected 0 or 1")
    import edge.ranking.cuda

    monkeypatch.setattr(edge.ranking.cuda, "GRAPH_MODE_DEFAULT", value == "1")


def _subnormals_work() -> bool:
    tiny = np.array([1e-39], np.float32)  # a float32 subnormal
    return bool((tiny * np.float32(1.0))[0] != 0)


@pytest.fixture(autouse=True)
def restore_subnormals():
    """The runtimes set flush-to-zero / denormals-are-zero in the thread that runs inference, as the
    appliance wants (ORT's `session.set_denormal_as_zero` and torch's `set_flush_denormal` both set
    the calling thread's CPU mode). In a test that thread is pytest's own: put the mode back after
    the test, so that later tests (Hypothesis' subnormal floats, planted denormal weights) see IEEE
    arithmetic. torch is the one portable switch for that mode; it is in the test environment."""
    yield
    if not _subnormals_work():
        import torch

        torch.set_flush_denormal(False)
        assert _subnormals_work(), "flush-to-zero could not be turned off after the test"
