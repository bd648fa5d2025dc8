"""benchmarks/soak.py's command line: a run that cannot give a report is refused before the
appliance starts (a soak runs for half an hour or more), in one line naming the option."""

from __future__ import annotations

import pytest

import benchmarks.soak as soak


@pytest.fixture
def no_run(monkeypatch: pytest.MonkeyPatch) -> list:
    """The soak itself replaced: these tests must never start the appliance."""
    started: list = []

    def fake(*args):
        started.append(args)
        raise RuntimeError("the fake soak ran")

    monkeypatch.setattr(soak, "soak", fake)
    return started


def refused(argv: list[str], capsys: pytest.CaptureFixture, started: list) -> str:
    with pytest.raises(SystemExit) as stop:
        soak.main(argv)
    assert stop.value.code == 2 and not started
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "Traceback" not in err
    return err


def test_minutes_are_named_as_given(no_run: list, capsys: pytest.CaptureFixture) -> None:
    """It said '--minutes -60.0' for --minutes -1 (the seconds it had computed)."""
    assert refused(["--minutes", "-1"], capsys, no_run).endswith("--minutes -1.0: expected a positive number")
    assert "--minutes inf" in refused(["--minutes", "inf"], capsys, no_run)


def test_a_sample_interval_past_the_measured_time_is_refused_before_the_run(
    no_run: list, capsys: pytest.CaptureFixture
) -> None:
    """2 minutes with the 60 s warm-up and a reading every 120 s: no reading after the warm-up,
    found out by summarize() only once the two minutes had been run."""
    err = refused(["--minutes", "2", "--sample-s", "120"], capsys, no_run)
    assert "--sample-s 120" in err and "after the 60 s warm-up" in err


def test_a_run_that_leaves_readings_after_the_warm_up_goes_ahead(
    no_run: list, capsys: pytest.CaptureFixture
) -> None:
    assert soak.main(["--minutes", "2", "--sample-s", "30"]) == 2  # the fake soak's RuntimeError
    assert len(no_run) == 1 and "the fake soak ran" in capsys.readouterr().err
