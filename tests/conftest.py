"""Test-wide switches of the GPU check (scripts/gpu_check.sh); nothing here changes a CPU run."""

from __future__ import annotations

import os

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
    import edge.postprocess_cuda

    monkeypatch.setattr(edge.postprocess_cuda, "GRAPH_MODE_DEFAULT", value == "1")
