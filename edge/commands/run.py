"""`binpick run`: start the appliance (supervisor) on a configuration file."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from binpick_core.errors import CommandError

if TYPE_CHECKING:
    from edge.config import Config

# SIGHUP (`systemctl reload binpick`): a clean stop with this exit status, which the unit names in
# SuccessExitStatus= and RestartForceExitStatus=, so that systemd starts the appliance again on
# the configuration as it is now (75 = EX_TEMPFAIL: "try again"). A configuration that does not
# load is refused and the appliance runs on. Not 128 + 1: a shell shows that for death by SIGHUP.
RELOAD_EXIT_STATUS = 75


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, help="appliance configuration (TOML), e.g. firmware_config/embedded.toml"
    )
    parser.add_argument(
        "--cycles", type=int, default=None, help="stop after N cycles (default: run until SIGTERM)"
    )
    parser.add_argument(
        "--print", action="store_true", help="print one line per cycle (default with --cycles)"
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the configuration, load what the start loads (bin model, model), print it and exit",
    )
    parser.add_argument(
        "--before-calibration",
        action="store_true",
        help="with --check-config: a required calibration not written yet is no error (first "
        "commissioning, the installer)",
    )


def setup_logging(level: str) -> None:
    """journald adds its own timestamps; a terminal gets them from us."""
    fmt = (
        "%(levelname)s %(name)s: %(message)s"
        if os.environ.get("JOURNAL_STREAM")
        else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.basicConfig(level=getattr(logging, level), format=fmt, stream=sys.stderr, force=True)
    logging.getLogger("pymodbus").setLevel(logging.WARNING if level != "DEBUG" else logging.INFO)


def _check(config: Config) -> int:
    """--check-config: the configuration as parsed, then what the start would refuse (the bin
    model's stage and the model built and released, a replay folder's depth): the installer's
    gate, so that a unit is not enabled that systemd would restart in a loop."""
    from edge.supervisor import StartupError, check_start

    print(json.dumps(config.to_dict(), indent=2))
    try:
        notes = check_start(config)
    except StartupError as exc:
        raise CommandError(f"{config.source}: the start would fail: {exc}") from exc
    for note in notes + _calibration_warnings(config):
        print(f"{config.source}: {note}", file=sys.stderr)
    print(f"{config.source}: OK", file=sys.stderr)
    return 0


def _calibration_warnings(config: Config) -> list[str]:
    """A calibration written with `binpick calibrate --accept-failed` is used by the appliance
    (the technician accepted it knowingly), so it does not change the exit status; but the
    installer's gate says so rather than pass it in silence. A file that is missing or cannot be
    used is the config check's business (refused there where `required = true`)."""
    from edge.calibration_file import CalibrationError, load_calibration

    path = config.calibration.file
    if not path or not Path(path).is_file():
        return []
    try:
        calibration = load_calibration(path)
    except CalibrationError:
        return []
    other = calibration.other_cell(config.calibration.cell)
    if other:  # refused at load where required, unless --before-calibration skipped that check
        then = "every cycle fails with calibration_missing" if config.calibration.required else "pixel mode"
        return [f"warning: calibration.file = {path!r}: {other}; the appliance refuses it ({then})"]
    note = calibration.failed_checks_note()
    return [f"warning: calibration.file = {path!r} {note}; the appliance uses it and warns"] if note else []


def main(args: argparse.Namespace) -> int:
    from edge.config import ConfigError, load_config

    if args.cycles is not None and args.cycles < 1:
        raise CommandError(f"--cycles {args.cycles}: expected a positive number of cycles")
    if args.before_calibration and not args.check_config:
        raise CommandError("--before-calibration: only with --check-config")
    try:
        # A required calibration that is not there yet is an error for --check-config, but not a
        # reason to refuse the start: the appliance reports calibration_missing to the PLC and on
        # its page, and takes the file up as soon as the wizard writes it (first commissioning).
        config = load_config(args.config, check_calibration=args.check_config and not args.before_calibration)
    except ConfigError as exc:
        raise CommandError(str(exc)) from exc
    if args.check_config:
        return _check(config)
    setup_logging(config.appliance.log_level)
    from edge.plc.register_map import RegisterMapError
    from edge.plc.service import PlcStartError
    from edge.supervisor import StartupError, Supervisor

    try:
        supervisor = Supervisor(
            config, print_lines=args.print or args.cycles is not None, max_cycles=args.cycles
        )
    except RegisterMapError as exc:
        raise CommandError(str(exc)) from exc

    exit_status = 0

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("binpick").info("%s received: stopping", signal.Signals(signum).name)
        supervisor.stop_event.set()

    def request_reload(_signum: int, _frame: FrameType | None) -> None:
        nonlocal exit_status
        log = logging.getLogger("binpick")
        if supervisor.stop_event.is_set():
            log.info("SIGHUP received while stopping: ignored")
            return
        try:  # what the start reads first; a model, camera or port it names is tried by the start
            load_config(args.config, check_calibration=False)
        except ConfigError as exc:
            log.error("SIGHUP received: configuration refused, running on with the one loaded: %s", exc)
            return
        log.info(
            "SIGHUP received: stopping to restart with %s (exit status %d: systemd starts it again)",
            args.config, RELOAD_EXIT_STATUS,
        )  # fmt: skip
        exit_status = RELOAD_EXIT_STATUS
        supervisor.stop_event.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGHUP, request_reload)
    try:
        supervisor.start()
    except (StartupError, PlcStartError) as exc:  # exit 2: systemd's Restart=on-failure retries
        supervisor.stop()
        raise CommandError(str(exc)) from exc
    try:
        supervisor.run()
    finally:
        supervisor.stop()
    if supervisor.lingering_threads:
        # A camera read or a model run is still in progress in native code: letting the
        # interpreter finalise would cancel that thread inside C++ and abort. Everything else
        # is closed; exit now.
        logging.getLogger("binpick").warning(
            "exiting with %d thread(s) still in native code", supervisor.lingering_threads
        )
        logging.shutdown()
        sys.stdout.flush()
        os._exit(exit_status)
    return exit_status
