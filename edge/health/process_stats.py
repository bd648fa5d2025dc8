"""The appliance process's own resources: memory, open files, threads, CPU time.

An appliance that runs for months must show a leak before the box runs out of memory or file
descriptors, so `/metrics` exports these beside the cycle counters (under the names Prometheus'
own process collector uses, so existing dashboards and alert rules apply) and `/status.json`
shows them. Read from Linux's `/proc/self` at request time, a handful of small reads; where there
is no `/proc` (not a target) every field is None and the exports leave the lines out.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

_PROC = Path("/proc/self")


@dataclass(frozen=True)
class ProcessStats:
    """One reading; None where the platform does not say."""

    resident_memory_bytes: int | None
    virtual_memory_bytes: int | None
    open_fds: int | None
    max_fds: int | None
    threads: int | None
    cpu_seconds: float | None
    start_time_seconds: float | None  # since the Unix epoch

    def to_dict(self) -> dict:
        return asdict(self)


def read_process_stats(proc: Path = _PROC) -> ProcessStats:
    """This process's resources now (`proc` is a test seam for another process's /proc entry)."""
    stat = _stat_fields(proc)
    ticks = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    boot = _boot_time()
    return ProcessStats(
        resident_memory_bytes=None if stat is None else int(stat[21]) * page,
        virtual_memory_bytes=None if stat is None else int(stat[20]),
        open_fds=_count_entries(proc / "fd"),
        max_fds=_open_files_limit(proc),
        threads=None if stat is None else int(stat[17]),
        cpu_seconds=None if stat is None else (int(stat[11]) + int(stat[12])) / ticks,
        start_time_seconds=None if stat is None or boot is None else boot + int(stat[19]) / ticks,
    )


def _stat_fields(proc: Path) -> list[str] | None:
    """`/proc/<pid>/stat` split into fields numbered from 0 = state, as proc(5) numbers them
    from 3: the command name in parentheses may hold spaces, so split after its last ')'."""
    try:
        text = (proc / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _open_files_limit(proc: Path) -> int | None:
    """The soft limit on open files from `/proc/<pid>/limits` (the process's own, which systemd's
    LimitNOFILE= sets; None where unlimited or unreadable)."""
    try:
        lines = (proc / "limits").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("Max open files"):
            soft = line[len("Max open files") :].split()[0]
            return int(soft) if soft.isdigit() else None
    return None


def _count_entries(folder: Path) -> int | None:
    """Entries of a /proc folder (`fd`: the open descriptors), None where unreadable."""
    try:
        return len(os.listdir(folder))
    except OSError:
        return None


def _boot_time() -> float | None:
    """When the machine booted (seconds since the epoch): /proc/<pid>/stat counts from it."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None
