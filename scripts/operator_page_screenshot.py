"""Screenshot of the operator's page (docs/media/operator_page.png) from a real appliance run.

The appliance (`binpick run`, bundled model, ONNX Runtime on the CPU) replays simulated Mikado
piles plus one empty tray (a `no_candidate` failure, with its snapshot); a stand-in PLC over
Modbus TCP reports each pick's outcome (one in five failed) as a real PLC would; after
`--seconds` headless Chromium takes the picture. Needs the `sim` extra and Debian's chromium.

    PYTHONPATH=. python scripts/operator_page_screenshot.py --seconds 180
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def make_frames(folder: Path, count: int, size: int) -> None:
    import cv2
    import numpy as np

    from edge.camera import open_camera
    from edge.config import CameraSection

    folder.mkdir(parents=True, exist_ok=True)
    camera = open_camera(CameraSection(source="simulated", width=size, height=size, seed=11))
    camera.open()
    try:
        for i in range(count):
            rgb = camera.grab(30.0).rgb
            cv2.imwrite(str(folder / f"frame_{i:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    finally:
        camera.close()
    cv2.imwrite(str(folder / f"frame_{count:03d}.png"), np.full((size, size, 3), 40, np.uint8))  # empty tray


def fake_plc(port: int, stop: threading.Event) -> None:
    """Acknowledge each result and report its pick outcome (every fifth one failed)."""
    from pymodbus.client import ModbusTcpClient

    from edge.plc.register_map import RegisterMap

    regs = RegisterMap.load()
    client = ModbusTcpClient("127.0.0.1", port=port)
    client.connect()
    seen = 0
    while not stop.wait(0.3):
        try:
            rr = client.read_holding_registers(0, count=regs.size, device_id=1)
            if rr.isError():
                continue
            sequence = rr.registers[regs["sequence_id"].address]
            error = rr.registers[regs["result_error"].address]
            if sequence != seen and error == 0:
                seen = sequence
                outcome = regs.pick_outcome.failed if sequence % 5 == 0 else regs.pick_outcome.picked
                client.write_registers(regs["pick_outcome"].address, [outcome, sequence], device_id=1)
        except Exception:  # the appliance restarts its server: try again
            time.sleep(0.5)
    client.close()


def shrink(path: Path) -> None:
    """256 colours, no dithering: a third of the bytes, the same look (flat UI colours)."""
    try:
        from PIL import Image
    except ImportError:
        return
    image = Image.open(path).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--out", default=str(ROOT / "docs" / "media" / "operator_page.png"))
    parser.add_argument("--size", type=int, default=384)
    args = parser.parse_args()

    from appliance_helpers import Appliance, free_port, wait_port
    from browser import chromium, missing

    if missing():
        print(missing(), file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="binpick-shot-"))
    make_frames(tmp / "frames", 9, args.size)
    tcp, http = free_port(), free_port()
    config = tmp / "cell.toml"
    config.write_text(f"""
[appliance]
name = "cell-1"
mode = "free-run"
cycle_period_s = 1.0
[camera]
source = "folder"
folder = "{tmp / "frames"}"
width = {args.size}
height = {args.size}
[inference]
model = "{ROOT / "models" / "bicameral_f25_rgb.onnx"}"
[plc]
registers = "{ROOT / "firmware_config" / "registers.toml"}"
tcp_port = {tcp}
allowed_clients = ["127.0.0.1"]
[health]
http_port = {http}
snapshot_dir = "{tmp / "snapshots"}"
snapshot_min_interval_s = 0.0
""")
    appliance = Appliance(config, tmp)
    stop = threading.Event()
    try:
        wait_port(http, 60)
        wait_port(tcp, 10)
        plc = threading.Thread(target=fake_plc, args=(tcp, stop), daemon=True)
        plc.start()
        time.sleep(args.seconds)
        with chromium(1920, 1080) as driver:
            driver.get(f"http://127.0.0.1:{http}/")
            time.sleep(4)
            driver.find_element("id", "snapshot-btn").click()
            time.sleep(3)
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1920, min(height + 140, 2400))
            time.sleep(2)
            driver.save_screenshot(args.out)
        shrink(Path(args.out))
        print(f"wrote {args.out}")
    finally:
        stop.set()
        appliance.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
