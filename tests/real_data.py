"""Real photo sets live outside git (the tool rules keep fetched data out of commits), so their
tests skip where the files are absent. A machine that has them sets BINPICK_REQUIRE_DATA=1, and
an absent set is then a failure, not a silent skip (as BINPICK_REQUIRE_GPU does for the GPU)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_DATA = os.environ.get("BINPICK_REQUIRE_DATA") == "1"


def data_missing(message: str) -> NoReturn:
    """Skip with `message`, or fail with it under BINPICK_REQUIRE_DATA=1."""
    if REQUIRE_DATA:
        pytest.fail(f"BINPICK_REQUIRE_DATA=1, but {message}")
    pytest.skip(message)
