"""Snapshots stay bounded on disk and appear whole; the status page degrades to an error page."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest
from appliance_helpers import free_port

from edge.health.snapshots import SnapshotRing
from edge.health.stats import CycleStats
from edge.health.status_server import StatusServer


def test_snapshot_ring_keeps_the_newest_n_complete_snapshots(tmp_path):
    ring = SnapshotRing(tmp_path / "snaps", keep=3)
    rgb = np.zeros((16, 16, 3), np.uint8)
    prob = np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)
    names = [ring.save(f"r{i}", rgb, prob, prob, {"i": i}, {"cfg": 1}).name for i in range(5)]
    assert ring.list() == names[-3:]
    for name in ring.list():
        files = {p.name for p in (tmp_path / "snaps" / name).iterdir()}
        assert files == {"rgb.png", "boundaries.png", "occlusions.png", "result.json", "config.json"}
    assert not [p for p in (tmp_path / "snaps").iterdir() if p.name.startswith(".")]  # no half-written ones
    assert json.loads((tmp_path / "snaps" / names[-1] / "result.json").read_text()) == {"i": 4}


def test_cycle_stats_percentiles():
    stats = CycleStats()
    for ms in range(1, 101):
        stats.record({"capture": 1.0, "inference": float(ms)}, "ok" if ms % 10 else "no_image", {})
    p = stats.percentiles()
    assert p["total"]["p50"] == pytest.approx(51.5) and p["compute"]["p95"] == pytest.approx(95.05)
    assert stats.summary()["errors"] == {"no_image": 10}


class BrokenProvider:
    def status(self):
        raise RuntimeError("boom")

    def metrics(self):
        return "binpick_up 1\n"

    def overlay_png(self):
        return b""

    def snapshot(self, reason):
        raise OSError("disk full")


def test_status_server_reports_provider_failures_as_http_errors(caplog):
    """A failure answers 500; its text goes to the log only (it may name paths or internals)."""
    server = StatusServer(BrokenProvider(), "127.0.0.1", free_port())
    server.start()
    base = f"http://127.0.0.1:{server.address[1]}"
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/status.json", timeout=5)
        assert err.value.code == 500 and b"boom" not in err.value.read()
        failures = [r for r in caplog.records if r.levelname == "ERROR"]
        assert len(failures) == 1 and "RuntimeError: boom" in failures[0].getMessage()
        assert failures[0].exc_info is None  # one line, no traceback
        assert urllib.request.urlopen(f"{base}/metrics", timeout=5).read() == b"binpick_up 1\n"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/overlay.png", timeout=5)
        assert err.value.code == 404
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(
                urllib.request.Request(f"{base}/snapshot", method="POST", data=b""), timeout=5
            )
        assert err.value.code == 500 and b"disk full" in err.value.read()
    finally:
        server.stop()


# A snapshot ring on a full disk, in a child process: the writes must fail at the OS as they do on
# the appliance (ENOSPC on a real small file system; EFBIG under a file size limit).
RING_ON_A_SMALL_DISK = r"""
import errno, json, os, shutil, sys
import numpy as np
from edge.health.snapshots import SnapshotRing

disk = sys.argv[1]
rgb = np.random.default_rng(1).integers(0, 256, (170, 170, 3), dtype=np.uint8)  # incompressible
pages = os.statvfs(disk).f_blocks  # the file system's 4 KiB pages
probe = SnapshotRing(os.path.join(disk, "probe"), keep=1).save("probe", rgb, None, None, {}, {})
per = sum(-(-os.path.getsize(os.path.join(probe, f)) // 4096) for f in os.listdir(probe))
png_size = os.path.getsize(os.path.join(probe, "rgb.png"))
shutil.rmtree(os.path.join(disk, "probe"))
keep = pages // per  # `keep` snapshots fit, `keep + 1` do not
out = {"keep": keep, "slack_pages": pages - keep * per, "saved": 0, "errors": [], "full": []}
ring = SnapshotRing(os.path.join(disk, "snaps"), keep=keep)
for i in range(3 * keep):
    try:
        ring.save(f"r{i}", rgb, None, None, {"i": i}, {})
        out["saved"] += 1
    except OSError as exc:
        out["errors"].append(exc.errno)
out["ring"] = len(ring.list())
out["names"] = sorted(os.listdir(ring.folder))
sizes = [os.path.getsize(os.path.join(ring.folder, n, "rgb.png")) for n in ring.list()]
out["cut_images"] = sum(size != png_size for size in sizes)
# something else fills the disk: a ring that has not filled its `keep` cannot make room
fd = os.open(os.path.join(disk, "filler"), os.O_WRONLY | os.O_CREAT)
try:
    while os.write(fd, b"\0" * 4096):
        pass
except OSError:
    pass
os.close(fd)
fresh = SnapshotRing(os.path.join(disk, "fresh"), keep=100)
for i in range(3):
    try:
        fresh.save(f"f{i}", rgb, rgb[..., 0], rgb[..., 1], {"i": i}, {})
    except OSError as exc:
        out["full"].append(exc.errno)
out["fresh"] = sorted(os.listdir(fresh.folder))
print(json.dumps(out))
"""


def _child_env() -> dict:
    import os

    from appliance_helpers import ROOT

    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_a_ring_on_a_full_disk_makes_room_first_and_leaves_no_partial_snapshot(tmp_path):
    """On a 600 KB tmpfs (a user and mount namespace: no privileges needed where the kernel
    allows them): a ring whose `keep` snapshots fill the disk keeps turning (it deletes the oldest
    before writing, not after), and a write that finds the disk full raises ENOSPC and removes its
    temporary folder, without libpng's own lines on stderr. Before, the eighth snapshot failed
    and left `.NAME.tmp` folders that were never removed, one per attempt."""
    import errno
    import shutil
    import subprocess
    import sys

    unshare = shutil.which("unshare")
    disk = tmp_path / "disk"
    disk.mkdir()
    probe = [unshare or "unshare", "--user", "--map-root-user", "--mount", "true"]
    if unshare is None or subprocess.run(probe, capture_output=True).returncode != 0:
        pytest.skip("no unprivileged user/mount namespace here for a small tmpfs")
    mount = 'mount -t tmpfs -o size=600k tmpfs "$0" && exec "$1" -c "$2" "$0"'
    child = subprocess.run(
        [unshare, "--user", "--map-root-user", "--mount", "sh", "-c", mount, str(disk), sys.executable,
         RING_ON_A_SMALL_DISK],
        capture_output=True, text=True, timeout=60, env=_child_env(),
    )  # fmt: skip
    assert child.returncode == 0, child.stderr
    out = json.loads(child.stdout)
    assert out["keep"] >= 3 and out["slack_pages"] >= 2, out  # the sizes this test relies on
    assert out["errors"] == [] and out["saved"] == 3 * out["keep"] and out["ring"] == out["keep"], out
    assert not [n for n in out["names"] if n.startswith(".")] and out["cut_images"] == 0, out
    assert out["full"] == [errno.ENOSPC] * 3, out
    assert out["fresh"] == [], out  # no temporary folder, no partial PNG left behind
    assert "libpng" not in child.stderr and child.stderr.strip() == "", child.stderr


def test_a_failed_write_under_a_file_size_limit_leaves_nothing_and_one_error(tmp_path):
    """The same failure without namespaces: RLIMIT_FSIZE makes the kernel refuse the PNG's write
    (EFBIG, SIGXFSZ ignored) as a full disk refuses it; before, cv2.imwrite printed libpng's
    errors, returned False unnoticed, and the snapshot was renamed into place with a cut image."""
    import errno
    import resource
    import signal
    import subprocess
    import sys

    script = r"""
import json, os, sys
import numpy as np
from edge.health.snapshots import SnapshotRing
rgb = np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8)
ring = SnapshotRing(sys.argv[1], keep=5)
errors = []
for i in range(3):
    try:
        ring.save(f"r{i}", rgb, None, None, {"i": i}, {})
    except OSError as exc:
        errors.append(exc.errno)
print(json.dumps({"errors": errors, "names": sorted(os.listdir(sys.argv[1]))}))
"""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))

    child = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "snaps")],
        capture_output=True, text=True, timeout=60, env=_child_env(), preexec_fn=limit,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr
    out = json.loads(child.stdout)
    assert out == {"errors": [errno.EFBIG] * 3, "names": []}, out
    assert "libpng" not in child.stderr and child.stderr.strip() == "", child.stderr


def test_leftovers_of_an_interrupted_write_are_swept_at_the_first_snapshot(tmp_path):
    """A power cut mid-write leaves `.NAME.tmp`: the ring's first snapshot after the start removes
    it (before, `_prune` skipped dot names: it stayed for ever)."""
    folder = tmp_path / "snaps"
    stale = folder / ".20261205-185629-000001-000021-failure-camera_lost.tmp"
    stale.mkdir(parents=True)
    (stale / "rgb.png").write_bytes(b"\x89PNG half")
    (folder / ".hidden-note").write_text("not ours")
    ring = SnapshotRing(folder, keep=3)
    name = ring.save("r", np.zeros((16, 16, 3), np.uint8), None, None, {}, {}).name
    assert sorted(p.name for p in folder.iterdir()) == [".hidden-note", name]
