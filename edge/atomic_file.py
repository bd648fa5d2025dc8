"""Whole-file writes that a reader (or a crash) never sees half done."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO


def create_temp_beside(path: Path) -> tuple[int, Path]:
    """Open a new temporary file in `path`'s folder for writing; returns (fd, temp path).

    Not `tempfile.mkstemp`: that makes the file 0600, and after the rename the replaced file
    would be unreadable to every other user (the appliance runs as its own user, a technician
    recalibrates as another). Created with 0666 instead, the kernel applies the umask (and a
    default ACL) exactly as for any new file; when `path` exists, the temporary takes its mode
    (and, where allowed, its owner), so a rewrite keeps the permissions someone chose.
    """
    try:
        old = os.stat(path)
    except FileNotFoundError:
        old = None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    if old is not None:
        try:
            with contextlib.suppress(OSError):  # only root may give a file away; the mode matters most
                os.fchown(fd, old.st_uid, old.st_gid)
            os.fchmod(fd, old.st_mode & 0o7777)  # after fchown, which may clear set-id bits
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
    return fd, tmp


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` as one step (`write_atomically_with`)."""
    write_atomically_with(path, lambda file: file.write(data))


def write_atomically_with(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> None:
    """Call `write(file)` on a temporary file beside `path`, fsync, then rename it over `path` and
    fsync the folder: readers never see half a file, a crash leaves the old or the new file (never
    an empty one), a failed write leaves neither a partial file nor its temporary behind, and the
    mode is kept. The callback form serves writers that stream (`torch.save`)."""
    path = Path(path)
    if path.is_dir():  # else os.replace fails naming the temporary file, not the path given
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def backup_paths(path: str | os.PathLike) -> list[Path]:
    """Existing numbered backups of `path` (`NAME.bak1`, `NAME.bak2`, ...), oldest first."""
    p = Path(path)
    pattern = re.compile(re.escape(p.name) + r"\.bak(\d+)$")
    found = []
    if p.parent.is_dir():
        for entry in p.parent.iterdir():
            m = pattern.match(entry.name)
            if m:
                found.append((int(m.group(1)), entry))
    return [e for _, e in sorted(found)]


def keep_backup(path: Path) -> Path | None:
    """The file at `path` kept under the next numbered backup name, before a rename replaces it:
    a hard link (the same bytes, no copy to fail half-way), a copy where the file system has no
    links (FAT on a USB stick). None when there is no file yet."""
    if not path.exists():
        return None
    existing = backup_paths(path)
    number = int(existing[-1].name.rsplit(".bak", 1)[1]) + 1 if existing else 1
    backup = path.with_name(f"{path.name}.bak{number}")
    try:
        os.link(path, backup)
    except OSError:
        shutil.copy2(path, backup)
    return backup


def output_problem(path: str | os.PathLike, folder: bool = False) -> str:
    """Why `path` cannot be written, as far as the file system shows ("" when it can): a command
    says it before its work, not as IsADirectoryError or FileExistsError from deep in a write.
    `folder`: `path` is a folder to write files into (made where missing) rather than a file.
    An empty path is refused: Path("") is the working folder, so `--out "$UNSET"` wrote a whole
    dataset into wherever the command was started."""
    if not os.fspath(path):
        return f"an empty path, expected a {'folder' if folder else 'file'}"
    p = Path(path)
    if folder and p.exists() and not p.is_dir():
        return "is a file, expected a folder"
    if not folder and p.is_dir():
        return "is a folder, expected a file to write"
    nearest = next((q for q in p.absolute().parents if q.exists()), None)
    if nearest is not None and not nearest.is_dir():
        return f"{nearest} is a file, expected a folder"
    writable = p if folder and p.exists() else nearest
    if writable is not None and not (os.access(writable, os.W_OK | os.X_OK) and _can_create_in(writable)):
        return f"the folder {writable} is not writable"
    return ""


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be made in `folder`, tried (and removed): os.access says yes to root
    everywhere, also on a read-only file system such as /sys, where the write then failed on its
    temporary file after the command's work."""
    try:
        fd, tmp = create_temp_beside(folder / ".binpick-write-check")
    except OSError:
        return False
    os.close(fd)
    tmp.unlink(missing_ok=True)
    return True


def check_output(
    flag: str, path: str | os.PathLike, folder: bool = False, inputs: dict[str, str | None] | None = None
) -> None:
    """Refuse, as one line naming `flag`, an output `path` that cannot be written
    (`output_problem`) or that is one of the command's `inputs` (flag -> path): a command says so
    before its work (a quantisation ran its whole calibration before "Permission denied" on the
    temporary file, and `quantize --out` equal to `--model` replaced the fp32 export with int8)."""
    from binpick_core.errors import CommandError

    problem = output_problem(path, folder)
    if problem:
        raise CommandError(f"{flag} {os.fspath(path) or repr('')}: {problem}")
    for input_flag, input_path in (inputs or {}).items():
        if input_path is not None and same_file(path, input_path):
            raise CommandError(
                f"{flag} {path}: the same file as {input_flag} {input_path}, which it would replace; "
                f"expected another {flag}"
            )


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file (a link or another spelling of it included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return Path(a).resolve() == Path(b).resolve()
