"""Hardening of the status page's HTTP handling, found in review: a request trickled byte by byte
(slowloris) held its connection for ever and one host could fill the connection cap; bad paths
answered 500 with a traceback; a GET's body was read as the next request; other methods got the
stdlib's 501 before authentication. Raw sockets and http.client against a real server on
127.0.0.1; each test fails without its fix."""

from __future__ import annotations

import base64
import http.client as http_client
import logging
import socket
import time

import numpy as np
import pytest
from appliance_helpers import free_port, wait_until
from test_status_access import ALICE, Provider

from edge.health.status_server import StatusServer

pytestmark = pytest.mark.timeout(60)

BASIC = "Basic " + base64.b64encode(b"alice:alice-pass").decode()


def serve(**kwargs) -> StatusServer:
    srv = StatusServer(Provider(), "127.0.0.1", free_port(), **kwargs)
    srv.start()
    return srv


def connect(port: int, source: str = "127.0.0.1", timeout: float = 5.0) -> socket.socket:
    """A connection to the page from `source` (any 127.x.y.z is this host's loopback on Linux)."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))


def closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"", every: float = 0.1) -> bool:
    """True when the server closes `sock` within `seconds`, while `trickle` is sent every `every`
    seconds (a slowloris client's byte at a time) and whatever it answers is read."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if trickle:
                sock.sendall(trickle)
            sock.settimeout(every)
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:  # reset or broken pipe: closed as well
            return True
    return False


def ask(sock: socket.socket, request: bytes) -> bytes:
    """One request on a kept-alive connection; its answer's head and body (read to Content-Length)."""
    sock.sendall(request)
    sock.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    fields = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:])
    length = int({k.lower(): v for k, v in fields.items()}[b"content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        body += chunk
    return head + b"\r\n\r\n" + body


# ---------------------------------------------------------------- slowloris


def test_a_trickled_request_head_is_cut_at_the_request_deadline():
    """Before: the 60 s timeout applied per read, so one byte every few seconds held the
    connection (and its thread and slot) for ever, before any credentials were shown."""
    srv = serve(users=[ALICE], idle_timeout_s=5.0, request_deadline_s=0.5)
    try:
        with connect(srv.address[1]) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n")
            start = time.monotonic()
            assert closed_within(sock, 3.0, trickle=b"X")  # every read well within the idle timeout
            assert time.monotonic() - start < 2.0
        wait_until(lambda: srv.httpd.open_connections == 0, 5.0, what="the slot to be freed")
    finally:
        srv.stop()


def test_a_trickled_body_is_cut_at_the_request_deadline():
    srv = serve(idle_timeout_s=5.0, request_deadline_s=0.5)
    try:
        with connect(srv.address[1]) as sock:
            sock.sendall(b"POST /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n")
            assert closed_within(sock, 3.0, trickle=b"x")
        assert srv.provider.snapshots_taken == []
    finally:
        srv.stop()


def test_the_deadline_does_not_cut_a_kept_alive_connection_between_requests():
    """The deadline runs from a request's first byte: between requests the idle timeout applies."""
    srv = serve(users=[ALICE], idle_timeout_s=5.0, request_deadline_s=0.3)
    try:
        request = f"GET /status.json HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {BASIC}\r\n\r\n".encode()
        with connect(srv.address[1]) as sock:
            assert ask(sock, request).startswith(b"HTTP/1.1 200")
            time.sleep(1.0)  # longer than the deadline, shorter than the idle timeout
            assert ask(sock, request).startswith(b"HTTP/1.1 200")
    finally:
        srv.stop()


def hold_slowloris(srv, held: list[socket.socket], count: int) -> None:
    """`count` connections from 127.0.0.1, each stopped inside its request head (a slowloris),
    appended to `held` (the caller closes them) once the page holds them all."""
    for _ in range(count):
        held.append(connect(srv.address[1]))
        held[-1].sendall(b"GET / HTTP/1.1\r\n")
    wait_until(lambda: srv.httpd.open_connections == count, 5.0, what=f"{count} connections held")


def test_one_host_cannot_take_the_whole_connection_cap():
    """A host that holds as many connections as it may (here trickling request heads, a
    slowloris) is turned away beyond its share; an operator on another host still gets in."""
    srv = serve(users=[ALICE], max_connections=4, max_connections_per_host=3)
    port = srv.address[1]
    held: list[socket.socket] = []
    try:
        hold_slowloris(srv, held, 3)
        with connect(port) as fourth:
            fourth.sendall(b"GET / HTTP/1.1\r\n")
            fourth.settimeout(5)
            assert fourth.recv(65536).startswith(b"HTTP/1.1 503")
        assert srv.httpd.refused_connections == 1
        request = f"GET /status.json HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {BASIC}\r\n\r\n".encode()
        with connect(port, source="127.0.0.2") as operator:
            assert ask(operator, request).startswith(b"HTTP/1.1 200")
    finally:
        for sock in held:
            sock.close()
        srv.stop()


# ---------------------------------------------------------------- bad paths


@pytest.mark.parametrize(
    "path",
    [
        b"/picks/\xb2.jpg",  # a superscript two: str.isdigit() took it, int() refused it
        b"/picks/" + b"9" * 5000 + b".jpg",  # beyond int()'s 4300 digits
        b"/static/a\x00b.js",  # an embedded NUL
        b"/static/" + b"a" * 300 + b".js",  # a name too long for the file system
    ],
)
def test_a_bad_path_is_404_without_a_traceback_or_a_path(caplog, path):
    """Before: 500, a traceback logged at ERROR on every request, and the install path in the
    body of the long name's 'File name too long'."""
    srv = serve(users=[ALICE])
    try:
        with connect(srv.address[1]) as sock:
            answer = ask(
                sock, b"GET " + path + f" HTTP/1.1\r\nHost: x\r\nAuthorization: {BASIC}\r\n\r\n".encode()
            )
        assert answer.startswith(b"HTTP/1.1 404"), answer[:200]
        assert b"edge" not in answer and b"Errno" not in answer
        with connect(srv.address[1]) as sock:  # kept: the page's own files, and no way out of them
            for name, status in (("app.js", b"200"), ("../connections.py", b"404"), ("..%2fauth.py", b"404")):
                get = f"GET /static/{name} HTTP/1.1\r\nHost: x\r\nAuthorization: {BASIC}\r\n\r\n"
                assert ask(sock, get.encode()).startswith(b"HTTP/1.1 " + status), name
        assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL") or r.exc_info]
    finally:
        srv.stop()


# ---------------------------------------------------------------- bodies (request smuggling)


def read_until_closed(sock: socket.socket, within: float = 5.0) -> bytes:
    """Everything the server sends until it closes `sock` (a reset counts as the close)."""
    sock.settimeout(within)
    chunks = []
    try:
        while data := sock.recv(65536):
            chunks.append(data)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


SMUGGLED = b"POST /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"


def test_a_get_body_is_read_and_dropped_not_served_as_the_next_request():
    """Before: the body (a whole POST here, which an open loopback page takes without a CSRF
    token) was answered as a second request."""
    srv = serve()
    try:
        head = f"GET /status.json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(SMUGGLED)}\r\n\r\n"
        with connect(srv.address[1]) as sock:
            assert ask(sock, head.encode() + SMUGGLED).startswith(b"HTTP/1.1 200")
            sock.settimeout(0.5)
            with pytest.raises(TimeoutError):
                sock.recv(65536)  # no second answer
            assert ask(sock, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").endswith(b"binpick_up 1\n")
        assert srv.provider.snapshots_taken == []
    finally:
        srv.stop()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_chunked_body_is_refused_with_411_and_closes(method):
    """http.server does not decode chunked bodies: the chunks were read as the next request (and a
    chunked POST /snapshot acted)."""
    srv = serve()
    try:
        chunk = b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)
        head = f"{method} /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        with connect(srv.address[1]) as sock:
            sock.sendall(head.encode() + chunk)
            answer = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 411") and answer.count(b"HTTP/1.1 ") == 1, answer
        assert b"Connection: close" in answer
        assert srv.provider.snapshots_taken == []
    finally:
        srv.stop()


def test_two_content_lengths_are_refused_with_400():
    srv = serve()
    try:
        head = (
            b"GET /status.json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nContent-Length: 64\r\n\r\n"
        )
        with connect(srv.address[1]) as sock:
            sock.sendall(head + SMUGGLED + b"x" * (64 - len(SMUGGLED)))
            answer = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 400") and answer.count(b"HTTP/1.1 ") == 1, answer
        assert srv.provider.snapshots_taken == []
    finally:
        srv.stop()


# ---------------------------------------------------------------- methods


def http(port: int, method: str, path: str, authorization: str = "") -> tuple[int, bytes, dict]:
    """(status, body, headers) of one request through http.client (which knows a HEAD has no body)."""
    conn = http_client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, headers={"Authorization": authorization} if authorization else {})
        response = conn.getresponse()
        return response.status, response.read(), response.headers
    finally:
        conn.close()


@pytest.mark.parametrize("method", ["PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "FOO"])
def test_another_method_is_authenticated_then_405(method):
    """Before: the stdlib's 501 HTML page, to anyone, credentials or not."""
    srv = serve(users=[ALICE])
    try:
        port = srv.address[1]
        status, body, _ = http(port, method, "/status.json")
        assert (status, body) == (401, b"")
        status, body, headers = http(port, method, "/status.json", BASIC)
        assert status == 405 and headers["Allow"] == "GET, HEAD, POST" and b"<" not in body
    finally:
        srv.stop()


def test_head_answers_the_get_headers_without_the_body():
    srv = serve(users=[ALICE])
    try:
        port = srv.address[1]
        assert http(port, "HEAD", "/status.json")[:2] == (401, b"")
        _, body, got = http(port, "GET", "/status.json", BASIC)
        status, empty, head = http(port, "HEAD", "/status.json", BASIC)
        assert status == 200 and empty == b"" and head["Content-Length"] == str(len(body))
        assert head["Content-Type"] == got["Content-Type"]
        with connect(port) as sock:  # a stream's HEAD: its headers, then the connection closes
            sock.sendall(f"HEAD /events HTTP/1.1\r\nHost: x\r\nAuthorization: {BASIC}\r\n\r\n".encode())
            answer = read_until_closed(sock, within=3.0)
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\n")
    finally:
        srv.stop()


def test_the_server_header_names_no_versions():
    """Before: `Server: binpick Python/3.11.7`."""
    srv = serve(users=[ALICE])
    try:
        port = srv.address[1]
        assert http(port, "GET", "/status.json", BASIC)[2]["Server"] == "binpick"
        assert http(port, "GET", "/status.json")[2]["Server"] == "binpick"
        with connect(port) as sock:  # the stdlib's own error answers as well
            sock.sendall(b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n")
            answer = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 431") and b"\r\nServer: binpick\r\n" in answer, answer
    finally:
        srv.stop()


# ---------------------------------------------------------------- caching


def test_a_thumbnail_has_one_cache_control():
    """Before: `no-store` from _send and `private, max-age=3600` from the thumbnail, both sent."""
    srv = serve(users=[ALICE])
    try:
        srv.provider.history.published(7, np.full((64, 64, 3), 128, np.uint8), 32.0, 32.0, 0.9, 10.0)
        status, body, headers = http(srv.address[1], "GET", "/picks/7.jpg?t=1.5", BASIC)
        assert status == 200 and body.startswith(b"\xff\xd8")
        assert headers.get_all("Cache-Control") == ["private, max-age=3600"]
        status, _, headers = http(srv.address[1], "GET", "/status.json", BASIC)
        assert headers.get_all("Cache-Control") == ["no-store"]
        assert headers.get_all("X-Content-Type-Options") == ["nosniff"]
    finally:
        srv.stop()


def test_every_answer_carries_the_page_csp_a_snapshot_index_too(tmp_path):
    """Before: only / sent the Content-Security-Policy; a snapshot's index, HTML as well, went
    without one (another site could frame it, nothing limited what it loads)."""
    from edge.health.snapshots import SnapshotRing
    from edge.health.status_server import CSP

    srv = serve(users=[ALICE])
    try:
        ring = srv.provider.snapshots = SnapshotRing(tmp_path / "snapshots", 5)
        name = ring.save("on-demand", None, None, None, {"error": "none"}, {"health": {}}).name
        for path in ("/", f"/snapshots/{name}", f"/snapshots/{name}/result.json", "/status.json", "/nope"):
            status, _, headers = http(srv.address[1], "GET", path, BASIC)
            assert status == (404 if path == "/nope" else 200), path
            assert headers.get_all("Content-Security-Policy") == [CSP], path
        assert "frame-ancestors 'none'" in CSP
    finally:
        srv.stop()


# ---------------------------------------------------------------- what the integrator sees


def page_warnings(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and text in r.getMessage()]


def test_a_request_cut_at_the_deadline_is_logged_once_per_host_per_minute(caplog):
    """Before: only a DEBUG line (the stdlib's 'Request timed out'), so a slowloris peer was
    invisible in the journal. Now a WARNING naming the host, once per host per minute (the
    shared `HostLogLimit`): a second cut from the same host is not logged, another host's is."""
    caplog.set_level(logging.INFO)
    srv = serve(users=[ALICE], idle_timeout_s=5.0, request_deadline_s=0.3)
    try:
        for source in ("127.0.0.1", "127.0.0.1", "127.0.0.2"):
            with connect(srv.address[1], source=source) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\n")
                assert closed_within(sock, 3.0, trickle=b"X")
        with connect(srv.address[1], source="127.0.0.4") as sock:  # a body trickled past it, a third host
            head = f"POST /snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {BASIC}\r\n"
            sock.sendall(head.encode() + b"Content-Length: 1000\r\n\r\n")
            assert closed_within(sock, 3.0, trickle=b"x")
        wait_until(lambda: srv.httpd.open_connections == 0, 5.0, what="the slots to be freed")
    finally:
        srv.stop()
    lines = page_warnings(caplog, "did not send its whole request within 0.3 s")
    assert [line.split()[2] for line in lines] == ["127.0.0.1", "127.0.0.2", "127.0.0.4"], lines


def test_connections_turned_away_are_logged_once_per_host_per_minute(caplog):
    """Before: the first refusal and then every 100th, whoever it came from, so a second host
    turned away went unlogged. Now through `HostLogLimit`, like the PLC's refusals: one WARNING
    per host per minute; the counter counts every one."""
    caplog.set_level(logging.INFO)
    srv = serve(users=[ALICE], max_connections=2, max_connections_per_host=2)
    port = srv.address[1]
    held: list[socket.socket] = []
    try:
        hold_slowloris(srv, held, 2)
        for source in ("127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.3"):
            with connect(port, source=source) as extra:
                extra.settimeout(5)
                assert extra.recv(65536).startswith(b"HTTP/1.1 503")
        assert srv.httpd.refused_connections == 4
    finally:
        for sock in held:
            sock.close()
        srv.stop()
    lines = page_warnings(caplog, "turned away")
    assert [line.split()[2] for line in lines] == ["127.0.0.1", "127.0.0.3"], lines
