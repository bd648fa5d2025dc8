"""What `systemd/install.sh` installs for a configuration: the file with its paths moved to where
the installer puts things, and the packages beyond the appliance's own that it needs.

The installer used to rewrite two paths with sed (the model, the snapshot folder), so a shipped
configuration naming anything else in the checkout (the folder camera's example pile) was installed
pointing at a path that does not exist on the host, and a source or backend needing an extra
package (GenICam's harvesters, OpenVINO) was installed without it; `--check-config` then refused
the result after the user, the venv and /etc/binpick/binpick.toml had been made.

    python -m edge.install_plan CONFIG.toml --checkout DIR --place SRC=DEST ... --out FILE
    python -m edge.install_plan CONFIG.toml --requirements

Paths are rewritten in the file's own text (its comments kept) for the keys `edge.config` resolves
(`PATH_KEYS`): a relative path is taken from the configuration's folder, as the appliance reads
it; one inside the checkout is moved to where `--place` says that part of the checkout goes, and
one inside the checkout that no `--place` covers is refused (it would not exist on the host).
Absolute paths outside the checkout are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from edge.atomic_file import write_atomically
from edge.camera.packages import pip_requirement, python_too_old
from edge.config import PATH_KEYS, ConfigError, load_config
from edge.inference.openvino_backend import REQUIREMENT as OPENVINO_REQUIREMENT
from edge.inference.tensorrt_backend import CUDA_PYTHON_REQUIREMENT

# TensorRT comes with the Jetson's JetPack as a system package: the venv must see it. The backend's
# device memory goes through cuda-python, which JetPack does not install: pip does.
SYSTEM_PACKAGE_BACKENDS = ("tensorrt",)
DEFAULT_CUDA_HOME = Path(os.environ.get("CUDA_HOME") or "/usr/local/cuda")

_SECTION = re.compile(r"^\s*\[([A-Za-z0-9_]+)\]\s*(#.*)?$")
_STRING_KEY = re.compile(r'^(\s*([A-Za-z0-9_]+)\s*=\s*)"([^"\\]*)"(.*)$')


class InstallPlanError(ValueError):
    """A configuration the installer cannot place; the message names the file, key and value."""


def parse_place(text: str) -> tuple[Path, Path]:
    """`SRC=DEST` of --place: the checkout's SRC (relative to it) goes to DEST on the host."""
    source, sep, dest = text.partition("=")
    if not sep or not source or not dest.startswith("/"):
        raise InstallPlanError(f"--place {text!r}: expected CHECKOUT_PATH=/ABSOLUTE/HOST/PATH")
    return Path(source), Path(dest)


def installed_text(config_path: Path, checkout: Path, places: dict[Path, Path]) -> str:
    """The configuration's text with every path key pointing where the installer puts it."""
    config_path, checkout = config_path.resolve(), checkout.resolve()
    section = ""
    lines = []
    for number, line in enumerate(config_path.read_text(encoding="utf-8").splitlines(), start=1):
        header = _SECTION.match(line)
        if header:
            section = header.group(1)
        match = _STRING_KEY.match(line)
        if match and f"{section}.{match.group(2)}" in PATH_KEYS and match.group(3):
            where = f"{config_path}:{number}: {section}.{match.group(2)} = {match.group(3)!r}"
            moved = _moved(config_path.parent, match.group(3), checkout, places, where)
            line = f'{match.group(1)}"{moved}"{match.group(4)}'
        lines.append(line)
    return "\n".join(lines) + "\n"


def _moved(base: Path, value: str, checkout: Path, places: dict[Path, Path], where: str) -> str:
    if value.startswith("~"):
        return value  # a home folder on the host, as written
    path = (base / value).resolve()
    if not path.is_relative_to(checkout):
        return str(path) if not value.startswith("/") else value
    inside = path.relative_to(checkout)
    for source, dest in places.items():
        if inside == source or inside.is_relative_to(source):
            return str(dest / inside.relative_to(source))
    raise InstallPlanError(
        f"{where}: {inside} is in the checkout, which the installer does not copy; give an "
        "absolute path on the host"
    )


def installed_cuda_major(cuda_home: Path) -> int | None:
    """The major version of the CUDA toolkit JetPack (or a CUDA install) put in `cuda_home`, from
    its version.json (CUDA 11.1 and later) or version.txt ("CUDA Version 10.2.300"); None when
    neither is there or readable."""
    try:
        info = json.loads((cuda_home / "version.json").read_text(encoding="utf-8"))
        return int(str(info["cuda"]["version"]).split(".")[0])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        match = re.search(r"CUDA Version (\d+)\.", (cuda_home / "version.txt").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return int(match.group(1)) if match else None


def cuda_python_requirement(cuda_home: Path) -> str:
    """cuda-python pinned to the host's CUDA major version: pip takes the newest (13.x), whose
    bindings do not run on an older driver's CUDA (12 on JetPack 6). Unpinned where no CUDA
    version is found (the backend's start then names what is missing)."""
    major = installed_cuda_major(cuda_home)
    if major is None or major < 11:  # no cuda-python release for CUDA 10 (JetPack 4's TX2)
        return CUDA_PYTHON_REQUIREMENT
    return f"{CUDA_PYTHON_REQUIREMENT}>={major},<{major + 1}"


def requirements(config_path: Path, cuda_home: Path = DEFAULT_CUDA_HOME) -> tuple[list[str], bool]:
    """The pip requirements beyond the appliance's own for this configuration (relative to the
    checkout, e.g. ".[sim]"), and whether the venv must see the system's packages (TensorRT).
    `cuda_home`: where the host's CUDA is, for the cuda-python pin."""
    try:
        config = load_config(config_path, check_files=False)
    except ConfigError as exc:
        raise InstallPlanError(str(exc)) from None
    too_old = python_too_old(config.camera.source)
    if too_old:  # before pip fails on it halfway through the installer
        raise InstallPlanError(f"{config_path}: camera.source = {config.camera.source!r} {too_old}")
    wanted = [
        pip_requirement(config.camera.source),
        OPENVINO_REQUIREMENT if config.inference.backend == "openvino" else "",
        cuda_python_requirement(cuda_home) if config.inference.backend == "tensorrt" else "",
    ]
    return [w for w in wanted if w], config.inference.backend in SYSTEM_PACKAGE_BACKENDS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.install_plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--place", action="append", default=[], metavar="SRC=DEST")
    parser.add_argument("--out", type=Path, help="write the installed configuration here")
    parser.add_argument(
        "--requirements",
        action="store_true",
        help="print the pip requirements, one a line (TensorRT: system-site-packages)",
    )
    args = parser.parse_args(argv)
    try:
        if args.requirements:
            wanted, system = requirements(args.config)
            print("\n".join(wanted + (["system-site-packages"] if system else [])))
            return 0
        if args.out is None:
            parser.error("give --out (or --requirements)")
        places = dict(parse_place(text) for text in args.place)
        write_atomically(args.out, installed_text(args.config, args.checkout, places).encode())
    except (InstallPlanError, OSError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
