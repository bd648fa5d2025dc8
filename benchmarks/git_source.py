"""A file of a public repository at a pinned commit, read from a local copy (a fetched mirror's
git directory or a clone): how the benchmark and test data kept outside git are rebuilt."""

from __future__ import annotations

import subprocess
from pathlib import Path


class SourceError(RuntimeError):
    """The copy is missing, or lacks the commit or the path."""


def git_file(repo: Path, commit: str, path: str) -> bytes:
    """The bytes of `path` at `commit`, from a git directory or a clone at `repo`. A pinned
    commit, so that a newer checkout cannot change a rebuilt set."""
    git_dir = repo / ".git" if (repo / ".git").exists() else repo
    try:
        return subprocess.run(
            ["git", f"--git-dir={git_dir}", "show", f"{commit}:{path}"], check=True, capture_output=True
        ).stdout
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        detail = exc.stderr.decode().strip() if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        raise SourceError(f"{repo}: cannot read {path} at {commit}: {detail}") from None
