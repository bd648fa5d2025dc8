"""The `binpick` command: one entry point, one subcommand per job.

Subcommands are registered by module path and imported only when invoked, so
`binpick --help` and the appliance never pull in torch or mujoco. A subcommand
module exposes `configure(parser)` (adds its arguments) and `main(args) -> int`.

The factory's subcommands are named here as strings: this table is one of the appliance's
documented plug-in points (docs/contracts.md section 0), never a static import. Where a command
needs an extra that `pip install .` leaves out, the user gets one line naming it, not a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import select
import signal
import sys
from collections.abc import Sequence

from binpick_core.errors import CommandError
from edge import __version__

# name -> (module, one-line help). Keep sorted by the order a user meets them.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": (
        "edge.commands.run",
        "run the appliance: camera, model, ranking, PLC registers, status page",
    ),
    "detect": (
        "edge.commands.detect",
        "rank instance candidates in saved boundary/occlusion maps; JSON + overlay",
    ),
    "calibrate": (
        "edge.commands.calibrate",
        "calibration wizard: intrinsics, camera to robot, pick plane, validation",
    ),
    "bin": (
        "edge.commands.bin",
        "commission the bin: interior, empty-bin reference, floor plane (edge/bin_model)",
    ),
    "hash-password": (
        "edge.commands.hash_password",
        "salted hash of a status-page password or token, for [health] users / tokens",
    ),
    "registers-doc": (
        "edge.commands.registers_doc",
        "write docs/registers.md from the register map",
    ),
    "mikado": (
        "mikado.commands.mikado",
        "synthetic piles with exact boundary/occlusion ground truth: generate, stats, preview, coco",
    ),
    "train": (
        "bicameral.commands.train",
        "train a bicameral network on Mikado scenes (thesis defaults)",
    ),
    "finetune": (
        "bicameral.commands.finetune",
        "fine-tune a checkpoint, first encoder blocks frozen",
    ),
    "export": (
        "bicameral.commands.export",
        "export a training checkpoint to an ONNX model file",
    ),
    "quantize": (
        "bicameral.commands.quantize",
        "quantise a model file to int8 (NNCF, calibrated on Mikado frames) for the openvino backend",
    ),
    "eval": (
        "bicameral.commands.eval",
        "score a model: ODS/OIS/AP/AP60 and instance-level picking scores",
    ),
    "model-card": (
        "bicameral.commands.model_card",
        "write a model card from provenance and eval scores",
    ),
    "simcell": (
        "simcell.commands.simcell",
        "simulated bin-picking cell: closed-loop picking benchmark, baselines, report",
    ),
}


# Top-level modules of the optional extras (pyproject.toml `[project.optional-dependencies]`;
# tests/test_layers.py ties the two): a missing one names the extra that brings it.
EXTRA_OF_MODULE: dict[str, str] = {
    "torch": "train",
    "tensorboard": "train",
    "mujoco": "sim",
    "pycocotools": "sim",
    "tqdm": "sim",
    "matplotlib": "sim",
    "openvino": "x86",
    "nncf": "x86",
}


# The model factory's packages need Python 3.11 (mikado's worker pool recycles its processes with
# `max_tasks_per_child`; the factory is tested on 3.11 only). The appliance's commands run on 3.10.
FACTORY_PACKAGES = ("bicameral", "mikado", "simcell")
FACTORY_MIN_PYTHON = (3, 11)


def factory_python_error(module_name: str, version: tuple[int, ...]) -> str | None:
    """Why a factory command cannot run on this Python, or None (an appliance command, or 3.11+)."""
    if module_name.split(".")[0] not in FACTORY_PACKAGES or tuple(version[:2]) >= FACTORY_MIN_PYTHON:
        return None
    need = ".".join(map(str, FACTORY_MIN_PYTHON))
    return (
        f"the model factory needs Python {need} or newer, this is {version[0]}.{version[1]}; "
        "the appliance's commands (run, detect, calibrate, bin, hash-password, registers-doc) run here"
    )


def missing_extra(exc: ImportError) -> str | None:
    """The extra that would have provided the module `exc` failed to import, if it is one of ours."""
    top = (getattr(exc, "name", None) or "").split(".")[0]
    return EXTRA_OF_MODULE.get(top)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="binpick",
        description="Model-free bin-picking vision appliance and its model factory.",
    )
    parser.add_argument("--version", action="version", version=f"binpick {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_module=module_name)
    return parser


def _configure_subcommand(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.ArgumentParser:
    """Re-build the parser with the chosen subcommand's own arguments (imported lazily)."""
    name = next((a for a in argv if not a.startswith("-")), None)
    if name not in COMMANDS:
        return parser
    too_old = factory_python_error(COMMANDS[name][0], sys.version_info)
    if too_old:  # before importing it: what fails on 3.10 may be anywhere below the command
        raise CommandError(too_old)
    module = importlib.import_module(COMMANDS[name][0])
    sub_action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    module.configure(sub_action.choices[name])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = next((a for a in argv if not a.startswith("-")), "")
    try:
        parser = _configure_subcommand(build_parser(), argv)
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 0
        module = importlib.import_module(args._module)
        return int(module.main(args) or 0)
    except CommandError as exc:
        print(f"binpick {name}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc)
        if extra is None:
            raise
        print(
            f"binpick {name}: error: needs the `{extra}` extra, which is not installed here ({exc}); "
            f"install it with `pip install .[{extra}]`",
            file=sys.stderr,
        )
        return 2
    except OSError as exc:
        if isinstance(exc, BrokenPipeError) and _stdout_closed():
            # The reader of stdout went away (`binpick mikado stats DATA --json | head`): end as
            # a program killed by SIGPIPE does, not with "error: Broken pipe" and exit 2.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
            return 128 + signal.SIGPIPE
        # An --out that is a file, a folder where a file belongs, or unwritable: the path and the
        # reason in one line, as for any other bad argument (ModuleNotFoundError is not an OSError).
        where = f"{exc.filename}: " if exc.filename is not None else ""
        print(f"binpick {name}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a command that handles Ctrl-C says more and returns 130 itself
        print(f"binpick {name}: interrupted (Ctrl-C)", file=sys.stderr)
        return 130


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reading end is closed (poll reports an error on it), so a
    BrokenPipeError from a socket or a child's pipe is not taken for the reader of stdout leaving."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # stdout replaced, closed or without a descriptor
        return False


if __name__ == "__main__":  # `python -m edge.cli` ran nothing and exited 0 (`python -m edge` works too)
    sys.exit(main())
