"""The `binpick` entry point: help works for the command and every subcommand."""

import os
import subprocess
import sys

import pytest

from edge.cli import COMMANDS, build_parser


def test_top_level_help_lists_every_subcommand():
    text = build_parser().format_help()
    for name in COMMANDS:
        assert name in text


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_subcommand_help_exits_zero(name):
    proc = subprocess.run(
        [sys.executable, "-m", "edge", name, "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: binpick" in proc.stdout


def test_help_does_not_import_torch():
    code = (
        "import sys; from edge.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().endswith("False"), out.stdout + out.stderr


def test_an_out_that_is_a_file_is_one_line_naming_it(tmp_path, capsys):
    """An --out that is a file is named with its flag before any work (was the bare OSError
    `FILE: File exists` from deep in the run)."""
    pytest.importorskip("mujoco")
    pytest.importorskip("pycocotools")
    from edge.cli import main

    afile = tmp_path / "afile"
    afile.write_text("keep")
    assert main(["mikado", "generate", "--count", "1", "--out", str(afile)]) == 2
    assert capsys.readouterr().err == f"binpick mikado: error: --out {afile}: is a file, expected a folder\n"
    assert afile.read_text() == "keep"


def test_an_empty_out_is_refused_not_the_working_folder(tmp_path, monkeypatch, capsys):
    """`--out ""` (an unset shell variable in quotes) is Path("."): generate wrote dataset.json,
    scenes/ and the COCO file into the folder the command was started in."""
    pytest.importorskip("mujoco")
    pytest.importorskip("pycocotools")
    from edge.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["mikado", "generate", "--count", "1", "--out", "", "--width", "32", "--height", "32"]) == 2
    assert capsys.readouterr().err == "binpick mikado: error: --out '': an empty path, expected a folder\n"
    assert list(tmp_path.iterdir()) == []


def test_a_reader_that_leaves_stdout_ends_the_command_quietly():
    """`binpick ... | head`: the reader closes the pipe before the command has written. It said
    "error: Broken pipe" and exited 2, which `set -o pipefail` scripts took for a failure; now it
    ends as a program killed by SIGPIPE does (141, no message)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "edge", "registers-doc", "--out", "-"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (141, "")


def test_ctrl_c_that_no_command_handles_is_said_in_one_line(monkeypatch, capsys):
    """A KeyboardInterrupt reaching the CLI exited 130 without a word."""
    import edge.commands.registers_doc as command
    from edge.cli import main

    def interrupted(_args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "main", interrupted)
    assert main(["registers-doc"]) == 130
    assert capsys.readouterr().err == "binpick registers-doc: interrupted (Ctrl-C)\n"


def test_python_dash_m_edge_cli_runs_the_cli():
    """`python -m edge.cli --version` printed nothing and exited 0: the module had no main guard."""
    done = subprocess.run(
        [sys.executable, "-m", "edge.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.startswith("binpick "), done.stdout + done.stderr
