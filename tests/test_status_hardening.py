"""Hardening of the status page: Host names on an open loopback page (DNS rebinding), strict POST
body lengths, scrypt timing and load, and shutdown of the live streams. Each test fails without
its fix."""

from __future__ import annotations

import base64
import contextlib
import http.client
import logging
import socket
import threading
import time

import pytest
from appliance_helpers import free_port, wait_until
from test_status_access import ALICE, SCRAPER, Provider

from edge.health import auth as auth_module
from edge.health import status_server
from edge.health.auth import Authenticator, local_host
from edge.health.live import FrameHub
from edge.health.status_server import StatusServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def open_server():
    provider = Provider()
    srv = StatusServer(provider, "127.0.0.1", free_port())
    srv.start()
    try:
        yield srv.address[1], provider, srv
    finally:
        if not srv.stopping.is_set():  # a test may have stopped it already
            srv.stop()


def raw(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """Everything the server answers to `request` until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:  # it closed with our unread bytes: what came before counts
                data = b""
            if not data:
                return b"".join(chunks)
            chunks.append(data)


def request(port: int, method: str, path: str, headers: dict, body: bytes = b""):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.endheaders(body or None)
        response = conn.getresponse()
        return response.status, response.read(), response.headers
    finally:
        conn.close()


def test_local_host_names():
    local = ("localhost", "LOCALHOST:8080", "127.0.0.1", "127.0.0.1:80", "[::1]", "[::1]:8080", "127.0.0.5:1")
    for host in local:
        assert local_host(host), host
    for host in ("", None, "evil.example", "evil.example:8080", "127.0.0.1.nip.io", "localhost.evil.example",
                 "[::1", "::1", "127.0.0.1:80x", "10.0.0.1", "0.0.0.0:80", "localhost:"):  # fmt: skip
        assert not local_host(host), host


def test_open_page_refuses_a_rebound_host_name(open_server):
    port, provider, _ = open_server
    for method, path in (("GET", "/"), ("GET", "/status.json"), ("GET", "/events"), ("POST", "/snapshot")):
        rebound = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}",
                   "Sec-Fetch-Site": "same-origin", "Content-Length": "0"}  # fmt: skip
        status, body, headers = request(port, method, path, rebound)
        assert (status, body) == (421, b""), path
        assert headers["Connection"] == "close"
    assert request(port, "GET", "/status.json", {"Content-Length": "0"})[0] == 421  # no Host at all
    assert provider.snapshots_taken == []
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
        status, body, _ = request(port, "GET", "/status.json", {"Host": host})
        assert status == 200 and b"running" in body
    assert request(port, "POST", "/snapshot", {"Host": f"127.0.0.1:{port}", "Content-Length": "0"})[0] == 200
    assert provider.snapshots_taken == ["on-demand"]


def test_credentials_page_answers_any_host_name():
    provider = Provider()
    srv = StatusServer(provider, "127.0.0.1", free_port(), users=[ALICE])
    srv.start()
    try:
        port = srv.address[1]
        basic = "Basic " + base64.b64encode(b"alice:alice-pass").decode()
        named = {"Host": "binpick.plant.example", "Authorization": basic}
        status, _, _ = request(port, "GET", "/status.json", named)
        assert status == 200  # behind a reverse proxy or a DNS name: credentials guard it
    finally:
        srv.stop()


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "+5", " ", "٣"])
def test_a_bad_content_length_is_400_and_closes(open_server, length):
    port, provider, _ = open_server
    head = f"POST /snapshot HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {length}\r\n\r\n"
    answer = raw(port, head.encode("utf-8"))  # returns only once the server closes the connection
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b"Connection: close" in answer
    assert provider.snapshots_taken == []


def test_a_body_too_large_is_413_and_not_left_in_the_stream(open_server):
    port, provider, _ = open_server
    smuggled = f"POST /snapshot HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n".encode()
    body = smuggled + b"x" * (65537 - len(smuggled))
    head = f"POST /nothing HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n\r\n"
    answer = raw(port, head.encode())  # before: the server waited for 65536 bytes of it
    assert answer.startswith(b"HTTP/1.1 413") and answer.count(b"HTTP/1.1") == 1, answer
    assert b"Connection: close" in answer
    assert provider.snapshots_taken == []
    # a body within the limit is read whole; the next request on the connection is answered
    ok = f"POST /snapshot HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 3\r\n\r\nabc"
    bad = f"POST /snapshot HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: x\r\n\r\n"
    answer = raw(port, (ok + bad).encode())
    assert answer.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 400" in answer
    assert provider.snapshots_taken == ["on-demand"]


def test_refusals_of_a_post_and_401s_close_the_connection():
    provider = Provider()
    srv = StatusServer(provider, "127.0.0.1", free_port(), users=[ALICE])
    srv.start()
    try:
        port = srv.address[1]
        host = f"Host: 127.0.0.1:{port}\r\n"
        # a 401 whose body (the next "request") is never read: the connection closes after it
        inner = f"POST /snapshot HTTP/1.1\r\n{host}Content-Length: 0\r\n\r\n"
        unauthorized = f"POST /snapshot HTTP/1.1\r\n{host}Content-Length: {len(inner)}\r\n\r\n{inner}"
        answer = raw(port, unauthorized.encode())
        assert answer.startswith(b"HTTP/1.1 401") and answer.count(b"HTTP/1.1 ") == 1, answer
        assert b"Connection: close" in answer
        basic = "Basic " + base64.b64encode(b"alice:alice-pass").decode()
        # a 403 (no CSRF token) to a POST closes as well
        forbidden = f"POST /snapshot HTTP/1.1\r\n{host}Authorization: {basic}\r\nContent-Length: 0\r\n\r\n"
        answer = raw(port, (forbidden + forbidden).encode())
        assert answer.startswith(b"HTTP/1.1 403") and answer.count(b"HTTP/1.1 ") == 1, answer
        assert provider.snapshots_taken == []
    finally:
        srv.stop()


@pytest.fixture
def counted(monkeypatch):
    """Counts scrypt checks (and how many run at once) of every Authenticator."""
    auth_module._dummy()  # the dummy hash is made once, before counting
    calls: list[str] = []
    state = {"now": 0, "most": 0}
    lock = threading.Lock()
    real = auth_module.verify_secret

    def verify(secret, encoded):
        with lock:
            calls.append(secret)
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        try:
            time.sleep(state.get("sleep", 0.0))
            return state["result"](secret, encoded) if "result" in state else real(secret, encoded)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(auth_module, "verify_secret", verify)
    return calls, state


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_an_unknown_user_costs_one_scrypt_like_a_known_one(counted):
    calls, _ = counted
    auth = Authenticator([ALICE], [], open_access=True)
    assert auth.identify(basic("mallory", "guess")) is None
    assert calls == ["guess"]
    assert auth.identify(basic("alice", "wrong")) is None
    assert calls == ["guess", "wrong"]


def test_failures_are_not_cached_successes_are(counted):
    calls, _ = counted
    auth = Authenticator([ALICE], [], open_access=True)
    for _ in range(3):
        assert auth.identify(basic("alice", "wrong")) is None
    assert len(calls) == 3 and not auth._cache
    for _ in range(3):
        assert auth.identify(basic("alice", "alice-pass")).name == "alice"
    assert len(calls) == 4 and len(auth._cache) == 1


def test_a_full_cache_drops_its_oldest_entry(counted):
    calls, state = counted
    state["result"] = lambda secret, encoded: True
    auth = Authenticator([], [SCRAPER], open_access=False)
    for i in range(300):
        assert auth.identify(f"Bearer t{i}").name == "prometheus"
    assert len(calls) == 300 and len(auth._cache) <= auth_module.CACHE_ENTRIES
    for i in (299, 200, 100):  # recent entries stay: no scrypt
        auth.identify(f"Bearer t{i}")
    assert len(calls) == 300
    auth.identify("Bearer t0")  # the oldest went
    assert len(calls) == 301


def test_at_most_two_scrypt_checks_run_at_once(counted):
    calls, state = counted
    state["sleep"] = 0.05
    state["result"] = lambda secret, encoded: False
    auth = Authenticator([ALICE], [], open_access=True)
    threads = [threading.Thread(target=auth.identify, args=(basic("alice", f"guess{i}"),)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(calls) == 8 and state["most"] == 2


def get_from(port: int, source: str, authorization: str) -> tuple[int, bytes, http.client.HTTPMessage]:
    """One GET /status.json from address `source` (any 127.x.y.z is this host's loopback)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", "/status.json", headers={"Authorization": authorization})
        response = conn.getresponse()
        return response.status, response.read(), response.headers
    finally:
        conn.close()


def test_password_guessing_is_throttled_per_address_without_scrypt(counted, caplog):
    """Before: every guess ran scrypt (tens of ms of a core) with no limit and no log line: eight
    clients guessing in a loop made a 2-core appliance's cycle 3 times slower, unseen. Now an
    address has 10 failed checks, then one every 6 s, and beyond that gets 429 without a check;
    a logged-in operator (cached) and other addresses are not affected."""
    calls, _ = counted
    caplog.set_level(logging.WARNING, logger="edge.health.auth")
    srv = StatusServer(Provider(), "127.0.0.1", free_port(), users=[ALICE])
    srv.start()
    port = srv.address[1]
    try:
        assert get_from(port, "127.0.0.1", basic("alice", "alice-pass"))[0] == 200  # logged in, cached
        for i in range(10):  # the budget, auth.LOGIN_FAILURES_BURST
            assert get_from(port, "127.0.0.1", basic("alice", f"guess{i}"))[0] == 401
        checks = len(calls)
        fresh_right = "basic " + basic("alice", "alice-pass").split()[1]  # right, but not cached
        for authorization in (basic("alice", "guess-more"), fresh_right):  # no check runs for either
            status, body, headers = get_from(port, "127.0.0.1", authorization)
            retry = int(headers["Retry-After"])
            assert status == 429 and 1 <= retry <= 6
            assert body == f"too many failed logins from 127.0.0.1: try again in {retry} s\n".encode()
        assert len(calls) == checks
        assert get_from(port, "127.0.0.1", basic("alice", "alice-pass"))[0] == 200  # the cached login
        assert get_from(port, "127.0.0.2", basic("alice", "alice-pass"))[0] == 200  # another address
        warnings = [r.getMessage() for r in caplog.records if r.name == "edge.health.auth"]
        assert len(warnings) == 1 and "127.0.0.1 failed to log in 10 times" in warnings[0]
    finally:
        srv.stop()


def test_the_failed_login_budget_refills_and_a_success_costs_nothing():
    now = [0.0]
    budget = auth_module.FailedLogins(burst=2, refill_s=6.0, clock=lambda: now[0], max_hosts=3)
    assert budget.take("a") == 0.0
    budget.give_back("a")  # a success: the unit comes back
    assert budget.take("a") == budget.take("a") == 0.0
    assert budget.take("a") == pytest.approx(6.0)
    now[0] = 4.5
    assert budget.take("a") == pytest.approx(1.5)
    now[0] = 6.0
    assert budget.take("a") == 0.0 and budget.take("a") > 0
    for host in ("b", "c", "d"):  # the table stays bounded; a throttled host stays throttled
        budget.give_back(host)
        assert budget.take(host) == 0.0
        budget.give_back(host)
    assert len(budget._hosts) <= 3 and budget.take("a") > 0


def test_many_addresses_do_not_reset_a_guessing_one_and_an_ipv6_64_shares_a_budget():
    """The table, once full of hosts with used budgets, was cleared: a client with thousands of
    addresses (an IPv6 /64 is thousands of addresses) reset every throttled host. Now the hosts
    charged longest ago go first, a refused guess counts as a charge, and IPv6 counts by /64."""
    now = [0.0]
    budget = auth_module.FailedLogins(burst=2, refill_s=60.0, clock=lambda: now[0], max_hosts=3)
    assert budget.take("10.0.0.1") == budget.take("10.0.0.1") == 0.0
    for i in range(2, 50):  # one failed guess from each of many other addresses
        assert budget.take(f"10.0.0.{i}") == 0.0
        assert budget.take("10.0.0.1") > 0, i  # the guessing address stays throttled
        assert len(budget._hosts) <= 3
    assert budget.take("2001:db8::1") == budget.take("2001:db8::ffff") == 0.0
    assert budget.take("2001:db8::abcd") > 0  # same /64
    assert budget.take("2001:db8:0:1::1") == 0.0  # another /64
    assert budget.take("::ffff:10.0.0.1") == 0.0  # an IPv4-mapped address is not folded into a /64


def waiting(hub: FrameHub) -> int:
    """How many threads are blocked in `hub.wait` now (CPython's Condition keeps a list of them)."""
    with hub._cond:
        return len(hub._cond._waiters)  # CPython's Condition internals: the one observable of a wait


def test_wake_all_releases_waiting_viewers_at_once():
    hub = FrameHub(lambda: b"")
    released = []
    waiters = [threading.Thread(target=lambda: released.append(hub.wait(0, 30.0))) for _ in range(3)]
    for t in waiters:
        t.start()
    assert wait_until(lambda: waiting(hub) == 3, 5.0, 0.01)  # all three blocked in wait, not merely started
    start = time.monotonic()
    hub.wake_all()
    for t in waiters:
        t.join(5)
    assert len(released) == 3 and time.monotonic() - start < 2
    assert hub.closed and waiting(hub) == 0
    start = time.monotonic()
    hub.wait(0, 30.0)  # after shutdown a wait does not block either
    assert time.monotonic() - start < 1


@pytest.mark.parametrize("path", ["/events", "/live.mjpg"])
def test_stop_ends_the_live_streams_at_once(open_server, path):
    port, provider, srv = open_server
    provider.frames.publish(1)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        # the stream sent its frame and waits for the next (for KEEPALIVE_S, 15 s, without stop())
        assert wait_until(lambda: provider.frames.viewers == 1 and waiting(provider.frames) == 1, 5.0, 0.01)
        start = time.monotonic()
        srv.stop()
        sock.settimeout(5)
        with contextlib.suppress(TimeoutError):  # still open after 5 s: fails below
            while sock.recv(65536):
                pass  # the server ends the stream and closes
        assert time.monotonic() - start < 3
    assert wait_until(lambda: provider.frames.viewers == 0, 5.0, 0.01)


@pytest.fixture
def small_server():
    """A page that hangs up on silence after 0.5 s and serves at most 3 connections at once."""
    srv = StatusServer(Provider(), "127.0.0.1", free_port(), idle_timeout_s=0.5, max_connections=3)
    srv.start()
    try:
        yield srv.address[1], srv
    finally:
        srv.stop()


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes `sock` (reads give b"") within `within` seconds."""
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
        return True
    except TimeoutError:
        return False


def test_a_silent_connection_is_hung_up_on_after_the_idle_timeout(small_server):
    """A sleeping tablet or a pulled cable leaves a half-open connection that never closes by
    itself; without a timeout its thread and descriptor were held for good."""
    port, srv = small_server
    before = threading.active_count()
    with (
        socket.create_connection(("127.0.0.1", port)) as silent,
        socket.create_connection(("127.0.0.1", port)) as kept_alive,
    ):
        kept_alive.sendall(b"GET /status.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # then nothing more
        assert kept_alive.recv(12).startswith(b"HTTP/1.1 200")
        assert _closed_by_server(silent, within=5.0)
        assert _closed_by_server(kept_alive, within=5.0)
    wait_until(
        lambda: srv.httpd.open_connections == 0 and threading.active_count() <= before,
        5.0,
        what="the hung-up connections' threads to end",
    )


def test_connections_beyond_the_cap_get_503_and_no_thread(small_server):
    port, srv = small_server
    srv.httpd.RequestHandlerClass.timeout = 30.0  # the three held connections must stay open here
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    try:
        wait_until(lambda: srv.httpd.open_connections == 3, 5.0, what="3 connections held")
        threads = threading.active_count()
        answer = raw(port, b"GET /status.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 5" in answer, answer
        assert threading.active_count() == threads and srv.httpd.refused_connections == 1
    finally:
        for sock in held:
            sock.close()
    wait_until(lambda: srv.httpd.open_connections == 0, 5.0, what="the held connections to close")
    status, _, _ = request(port, "GET", "/status.json", {"Host": "127.0.0.1"})
    assert status == 200 and srv.httpd.refused_connections == 1


@pytest.mark.parametrize("path", ["/live.mjpg", "/events"])
def test_a_stream_left_by_its_viewer_ends_though_no_frame_comes(small_server, monkeypatch, path):
    """An idle cell publishes no frame, so the MJPEG stream wrote nothing and never learnt that
    its viewer had closed the tab: its thread and descriptor stayed until the next frame."""
    port, srv = small_server
    monkeypatch.setattr(status_server, "KEEPALIVE_S", 0.2)
    srv.httpd.RequestHandlerClass.timeout = 30.0  # not the idle timeout: the stream's own check
    with socket.create_connection(("127.0.0.1", port)) as viewer:
        viewer.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        assert viewer.recv(12).startswith(b"HTTP/1.1 200")
        assert srv.httpd.open_connections == 1
    wait_until(lambda: srv.httpd.open_connections == 0, 5.0, what="the left stream to end")
