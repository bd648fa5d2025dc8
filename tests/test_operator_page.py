"""The operator's page in a real browser (Debian's headless Chromium through Selenium) against a
real appliance: the bundled model on replayed pictures, free-run, credentials configured.

One appliance and one browser session per role serve the whole module, to keep it to seconds.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request

import pytest
from appliance_helpers import ROOT, appliance_config, wait_until, write_pile_folder
from browser import chromium, missing

from edge.config import parse_config
from edge.health.auth import hash_secret
from edge.supervisor import Supervisor

pytestmark = [pytest.mark.timeout(180)]
PERIOD_S = 1.0  # the cell's cycle period: a new image must be on the page within it


@pytest.fixture(scope="module")
def appliance(tmp_path_factory):
    if missing():
        pytest.skip(missing())
    tmp = tmp_path_factory.mktemp("operator_page")
    write_pile_folder(tmp / "frames", count=4, size=96)
    users = f'users = ["alice:operator:{hash_secret("alice-pass")}", "bob:viewer:{hash_secret("bob-pass")}"]'
    path, _, http = appliance_config(
        tmp,
        ROOT / "models" / "bicameral_f25_rgb.onnx",
        camera=f'source = "folder"\nfolder = "{tmp / "frames"}"\nwidth = 96\nheight = 96',
        mode="free-run",
        appliance=f'name = "page-test"\ncycle_period_s = {PERIOD_S}',
        extra=users,
    )
    config = parse_config(path.read_text(), path)
    sup = Supervisor(config)
    sup.start()
    try:
        wait_until(lambda: sup.frames.latest.version >= 2, 60, what="two published images")
        yield sup, f"http://127.0.0.1:{http}"
    finally:
        sup.stop()


@pytest.fixture(scope="module")
def alice(appliance):
    _, base = appliance
    with chromium(1280, 900, "alice", "alice-pass") as driver:
        driver.get(base + "/")
        yield driver


def test_the_page_loads_with_state_and_user(alice, appliance):
    wait_until(
        lambda: alice.find_element("id", "state").get_attribute("data-state") != "idle", 20, what="state"
    )
    assert alice.find_element("id", "state").get_attribute("data-state") in ("running", "error")
    assert alice.find_element("id", "user").text == "alice"
    assert alice.find_element("id", "cell-name").text == "page-test"
    # read in one script: the list re-renders with each pick, so a held element can go stale
    thumb_width = "const img = document.querySelector('#picks li img'); return img ? img.naturalWidth : 0"
    wait_until(lambda: alice.execute_script(thumb_width) > 0, 20, what="a loaded pick thumbnail")
    assert alice.find_elements("css selector", "#registers tr") and alice.find_element("id", "handshake").text
    assert "bicameral" in alice.find_element("id", "model").text
    config = alice.find_element("id", "config").text
    assert "HEALTH" in config and "alice:operator:(hash)" in config
    assert "scrypt" not in alice.page_source  # the hashes never leave the appliance


def test_the_image_follows_each_publication_within_one_cycle(alice, appliance):
    sup, _ = appliance
    start = len(alice.execute_script("return window.binpickShown"))
    encodes_before, version_before = sup.frames.encodes, sup.frames.latest.version
    wait_until(
        lambda: len(alice.execute_script("return window.binpickShown")) >= start + 3,
        30,
        what="three new frames",
    )
    shown = alice.execute_script("return window.binpickShown")[start:]
    delays = [s["shown"] - s["published"] for s in shown]
    assert all(0 <= d < PERIOD_S for d in delays), delays
    sequences = [s["sequence"] for s in shown]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    live = alice.find_element("id", "live")
    # a newer frame may have arrived since `shown` was read, never an older one
    assert int(live.get_attribute("data-sequence")) >= shown[-1]["sequence"]
    assert alice.execute_script("return arguments[0].naturalWidth", live) == 96
    # one encode per publication, whoever watches
    assert sup.frames.encodes - encodes_before <= sup.frames.latest.version - version_before + 1
    assert "binpick_page_viewers 1" in sup.metrics()  # alice's event stream


def test_the_charts_render(alice):
    # each check reads the SVG in one script: the charts are redrawn every cycle, so elements
    # found in one call may be gone (stale) by the next
    drawn = """
        const svg = document.getElementById(arguments[0]);
        const paths = [...svg.querySelectorAll('path')].map(p => p.getAttribute('d') || '');
        return paths.some(d => d.length > 0) && svg.querySelectorAll('circle').length > 0;
    """
    wait_until(
        lambda: alice.execute_script(drawn, "chart-cycle") and alice.execute_script(drawn, "chart-success"),
        20,
        what="both charts",
    )
    labels = alice.execute_script(
        "return [...document.querySelectorAll('#chart-cycle text')].map(t => t.textContent)"
    )
    assert "now" in labels and any(label.endswith("ms") or label.endswith(" s") for label in labels)
    box = alice.find_element("id", "chart-cycle").rect
    assert box["width"] > 200 and box["height"] > 100


def test_the_snapshot_button_works_for_an_operator(alice, appliance):
    sup, _ = appliance
    before = len(sup.snapshots.list())
    button = alice.find_element("id", "snapshot-btn")
    assert button.is_enabled()
    button.click()
    toast = alice.find_element("id", "toast")
    wait_until(lambda: toast.get_attribute("data-result"), 20, what="the snapshot answer")
    assert toast.get_attribute("data-result") == "ok", toast.text
    assert len(sup.snapshots.list()) == before + 1
    assert sup.history.view()["actions"][0]["who"] == "alice"
    wait_until(lambda: "alice" in alice.find_element("id", "actions").text, 10, what="the action in the log")


def test_the_snapshot_is_refused_without_the_right(appliance):
    sup, base = appliance
    before = len(sup.snapshots.list())
    with chromium(390, 844, "bob", "bob-pass", mobile=True) as bob:  # a viewer, on a phone
        bob.get(base + "/")
        wait_until(lambda: bob.find_element("id", "user").text == "bob", 20, what="the page")
        assert not bob.find_element("id", "snapshot-btn").is_enabled()
        status = bob.execute_async_script(
            "const done = arguments[0];"
            "fetch('/snapshot', {method: 'POST', headers: {'X-CSRF-Token':"
            " document.querySelector('meta[name=csrf-token]').content}}).then(r => done(r.status));"
        )
        assert status == 403
        width = bob.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390  # one column, no sideways scrolling on a phone
    with chromium(800, 600) as anonymous:  # no credentials at all
        anonymous.get(base + "/")
        assert anonymous.find_element("tag name", "body").text == ""
    request = urllib.request.Request(base + "/snapshot", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 401
    assert len(sup.snapshots.list()) == before


def test_a_page_of_another_site_cannot_act_with_the_operators_credentials(appliance, caplog, tmp_path):
    """CSRF: alice's browser carries her credentials to every request; a POST from a page of
    another origin (here another port on 127.0.0.1) is refused."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    sup, base = appliance
    before = len(sup.snapshots.list())
    caplog.set_level(logging.INFO, logger="edge.health.status_server")
    (tmp_path / "elsewhere.html").write_text("<!doctype html><p>another site</p>")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    other = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        with chromium(800, 600, "alice", "alice-pass") as driver:
            driver.get(f"http://127.0.0.1:{other.server_address[1]}/elsewhere.html")
            driver.execute_async_script(
                "const done = arguments[0];"
                f"fetch('{base}/snapshot', {{method: 'POST', mode: 'no-cors'}})"
                ".then(() => done(), () => done());"
            )
            wait_until(lambda: "refused" in caplog.text, 10, what="the refusal in the log")
    finally:
        other.shutdown()
        other.server_close()
    assert (
        f"action /snapshot by alice@127.0.0.1 refused: Origin 'http://127.0.0.1:{other.server_address[1]}'"
        in (caplog.text)
    )  # her credentials were valid: the CSRF rule refused it
    assert len(sup.snapshots.list()) == before
