"""The appliance's web server: the operator's page at /, JSON at /status.json, Prometheus at
/metrics, the live annotated image (/events server-sent events + /live.jpg, or /live.mjpg),
pick thumbnails, failure snapshots, and actions (POST /snapshot).

stdlib `ThreadingHTTPServer` in a daemon thread, static files from `static/` (no build chain, no
JavaScript library: the charts are hand-written SVG). A viewer costs one thread blocked on the
frame hub's condition; frames are drawn and encoded once per publication for all viewers
(`edge.health.live`).

Access (`edge.health.auth`): with credentials configured every request needs them (401 and an
empty body otherwise), viewers may GET, operators may also POST; each POST passes the CSRF check
and is logged with who made it. Without credentials the server only binds to loopback (the
configuration refuses anything else) and every local client is an operator.
"""

from __future__ import annotations

import io
import json
import logging
import re
import select
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from edge.health.auth import Authenticator, Identity, LoginThrottled, local_host, loopback_address
from edge.health.connections import (
    IDLE_TIMEOUT_S,
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_HOST,
    REQUEST_DEADLINE_S,
    CappedServer,
    DeadlineReader,
)
from edge.log_limit import LOG_INTERVAL_S

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
SNAPSHOT_FILE = re.compile(r"^[a-z_]+\.(png|json)$")
STATIC_FILE = re.compile(r"[A-Za-z0-9_-]{1,64}\.(js|css|svg)")  # with fullmatch
PICK_FILE = re.compile(r"[0-9]{1,9}")  # a pick's sequence id, with fullmatch
KEEPALIVE_S = 15.0  # an idle event stream sends a comment this often (proxies close silent ones)
METHODS = ("GET", "HEAD", "POST")  # the methods served; any other is answered 405
MAX_BODY = 65536  # the largest request body read, and dropped (actions carry none)


class StatusProvider:
    """What the page shows; the supervisor implements these. The operator page's parts (`frames`,
    `history`, `overview`, `snapshots`) are optional: without them only the basic endpoints answer."""

    status: Callable[[], dict]
    metrics: Callable[[], str]
    overlay_png: Callable[[], bytes]
    snapshot: Callable[[str], str]


class StatusServer:
    def __init__(
        self,
        provider: StatusProvider,
        host: str,
        port: int,
        users: list[str] | None = None,
        tokens: list[str] | None = None,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
        max_connections_per_host: int = MAX_CONNECTIONS_PER_HOST,
        request_deadline_s: float = REQUEST_DEADLINE_S,
    ):
        self.auth = Authenticator(users or [], tokens or [], open_access=loopback_address(host))
        if not self.auth.open and not (self.auth.users or self.auth.tokens):
            raise ValueError(f"status page on {host}: beyond loopback it needs users or tokens")
        self.stopping = threading.Event()
        handler = _make_handler(provider, self.auth, self.stopping, idle_timeout_s, request_deadline_s)
        self.httpd = CappedServer((host, port), handler, max_connections, max_connections_per_host)
        self.address = self.httpd.server_address[:2]
        self.provider = provider
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="status-http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        frames = getattr(self.provider, "frames", None)
        if frames is not None:
            frames.wake_all()
        self.httpd.shutdown()
        self.httpd.server_close()


def _make_handler(
    provider: StatusProvider,
    auth: Authenticator,
    stopping: threading.Event,
    idle_timeout_s: float,
    request_deadline_s: float,
) -> type[BaseHTTPRequestHandler]:
    frames = getattr(provider, "frames", None)
    history = getattr(provider, "history", None)

    class Handler(BaseHTTPRequestHandler):
        server_version = "binpick"
        protocol_version = "HTTP/1.1"
        timeout = idle_timeout_s  # http.server applies it to the connection's socket
        identity: Identity | None = None

        def setup(self) -> None:
            """The stdlib's buffered reader, over a raw stream that knows the request's deadline."""
            super().setup()
            self.rfile.close()  # the socket's own file: replaced (closing it leaves the socket open)
            self._reader = DeadlineReader(self.connection, self.timeout)
            self.rfile = io.BufferedReader(self._reader)

        def handle_one_request(self) -> None:
            """Wait for a request up to the idle timeout, then read it within the request deadline."""
            if not self._await_request():
                self.close_connection = True
                return
            try:
                super().handle_one_request()  # its TimeoutError (the deadline passed) closes the connection
            finally:
                if self._reader.expired:
                    self._reader.expired = False
                    self._log_cut()

        def _log_cut(self) -> None:
            """A request not in within the deadline: a slow-loris client, or a link that drops
            most of its packets; the integrator should see either (once per host per minute)."""
            host = self.client_address[0]
            if self.server.log_limit.first(host, "request deadline"):
                log.warning(
                    "status page: %s did not send its whole request within %g s: connection closed "
                    "(a stalled or deliberately slow client); further ones from this host are not "
                    "logged for %.0f s",
                    host, request_deadline_s, LOG_INTERVAL_S,
                )  # fmt: skip
            else:
                log.debug(
                    "status page: %s did not send its whole request within %g s", host, request_deadline_s
                )

        def _await_request(self) -> bool:
            """True once the first byte of the next request is there: its deadline starts now."""
            self._reader.deadline = None
            try:
                first = self.rfile.peek(1)
            except (OSError, ValueError):  # the idle timeout, a reset, a closed file
                return False
            self._reader.deadline = time.monotonic() + request_deadline_s
            return bool(first)

        def log_message(self, fmt: str, *args: object) -> None:  # route to logging, not stderr
            log.debug("http %s: " + fmt, self.address_string(), *args)

        def _send(self, code: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
            self.send_response(code)
            if code >= 400 and self.command not in ("GET", "HEAD"):
                self.close_connection = True  # whatever is left of the request goes with it
            if self.close_connection:
                self.send_header("Connection", "close")
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            # one value per field: `headers` replaces a default (a thumbnail's Cache-Control). Every
            # answer carries the page's CSP: a snapshot's index is HTML too, and went without one
            # (any site could frame it; nothing limited what it loads)
            fields = {
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": CSP,
                **(headers or {}),
            }
            for key, value in fields.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _text(self, code: int, text: str, headers: dict | None = None) -> None:
            self._send(code, text.encode(), "text/plain; charset=utf-8", headers)

        def _json(self, data: dict) -> None:
            self._send(200, json.dumps(data, default=str).encode(), "application/json")

        def _refuse(self, code: int, headers: dict | None = None) -> None:
            """An empty answer that closes the connection (the request's body is never read)."""
            self.send_response(code)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True

        def _authenticate(self) -> bool:
            if auth.open and not local_host(self.headers.get("Host")):
                # open loopback: a page of a DNS-rebound name (evil.example -> 127.0.0.1) reaches this
                # server with its own Host, and would pass the Origin check; only loopback names do
                log.warning("status page: Host %r refused (open loopback page)", self.headers.get("Host"))
                self._refuse(421)
                return False
            try:
                self.identity = auth.identify(self.headers.get("Authorization"), self.client_address[0])
            except LoginThrottled as exc:  # guessing: answered without a check (auth.FailedLogins)
                self.close_connection = True
                self._text(429, f"{exc}\n", {"Retry-After": str(exc.retry_after_s)})
                return False
            if self.identity is None:
                self._refuse(401, {"WWW-Authenticate": 'Basic realm="binpick", charset="UTF-8"'})
                return False
            return True

        def version_string(self) -> str:
            """The Server header: the name only (the stdlib's adds Python's version)."""
            return self.server_version

        def parse_request(self) -> bool:
            """The stdlib answers a method without a do_ handler 501 with its HTML page, before any
            credentials are asked for: here it is authenticated first, then refused with 405."""
            if not super().parse_request():
                return False
            if self.command in METHODS:
                return True
            self._guarded(self._other_request)
            return False  # answered: the stdlib dispatches nothing

        def _other_request(self) -> None:
            if self._authenticate() and self._read_body():
                self._text(405, "method not allowed\n", {"Allow": ", ".join(METHODS)})

        def send_response(self, code: int, message: str | None = None) -> None:
            self._answered = True  # from here on a failure can only close the connection
            super().send_response(code, message)

        def _guarded(self, serve: Callable[[], None]) -> None:
            """Serve one request; a bug or a provider's failure answers a plain 500 and logs one
            line. The exception's text stays in the journal: it may name files, paths or internals,
            which the body would show to anyone who may view. The traceback is at DEBUG."""
            self._answered = False
            try:
                serve()
            except (ConnectionError, TimeoutError):
                self.close_connection = True  # a viewer closed its tab, or stopped reading, mid-answer
            except Exception as exc:
                log.error(
                    "status page: %s %.200r from %s failed: %s: %.300s",
                    self.command, self.path, self.client_address[0], type(exc).__name__, exc,
                )  # fmt: skip
                log.debug("status page: traceback of that failure", exc_info=True)
                self.close_connection = True
                if not self._answered:
                    self._text(500, "status page error: see the appliance's log\n")

        def _read_body(self) -> bool:
            """Read and drop the request's body, whatever the method: left unread, a GET's body
            was parsed as the next request on the connection (smuggled past the proxy's view and,
            on an open loopback page, a POST without a browser's headers). False when the request
            was refused instead (and the connection closes): a body without a plain length
            (http.server does not decode chunked ones), two lengths, a bad or too large one."""
            if self.headers.get("Transfer-Encoding") is not None:
                self.close_connection = True
                self._text(411, "length required: send a Content-Length, not Transfer-Encoding\n")
                return False
            lengths = self.headers.get_all("Content-Length") or ["0"]
            raw = lengths[0].strip()
            if len(lengths) > 1 or not (raw.isascii() and raw.isdigit()):  # "-1", "abc", "1e3"
                self.close_connection = True
                self._text(400, "bad request: Content-Length\n")
                return False
            if len(raw.lstrip("0")) > len(str(MAX_BODY)) or int(raw) > MAX_BODY:  # int() takes 4300 digits
                self.close_connection = True
                self._text(413, "request body too large\n")
                return False
            length = int(raw)
            if length and len(self.rfile.read(length)) < length:
                self.close_connection = True  # the client closed mid-body: nothing to answer
                return False
            return True

        # ------------------------------------------------------------------ GET
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._guarded(self._get_request)

        do_HEAD = do_GET  # noqa: N815 - the same answers without their bodies (`_send`, the streams)

        def _get_request(self) -> None:
            if not (self._authenticate() and self._read_body()):
                return
            url = urlsplit(self.path)
            self._get(url.path, parse_qs(url.query))

        def _get(self, path: str, query: dict) -> None:
            if path == "/":
                self._page()
            elif path == "/status.json":
                self._json(provider.status())
            elif path == "/metrics":
                self._send(200, provider.metrics().encode(), "text/plain; version=0.0.4; charset=utf-8")
            elif path == "/overlay.png":
                png = provider.overlay_png()
                if png:
                    self._send(200, png, "image/png")
                else:
                    self._text(404, "no image yet\n")
            elif path.startswith("/static/"):
                self._static(path[8:])
            elif frames is not None and path == "/api/overview.json":
                self._json(provider.overview())
            elif frames is not None and path == "/events":
                self._events()
            elif frames is not None and path == "/live.jpg":
                self._live_jpeg()
            elif frames is not None and path == "/live.mjpg":
                self._mjpeg()
            elif history is not None and path.startswith("/picks/") and path.endswith(".jpg"):
                self._thumbnail(path[7:-4])
            elif getattr(provider, "snapshots", None) is not None and path.startswith("/snapshots/"):
                self._snapshot_file(path[11:])
            else:
                self._text(404, "not found\n")

        def _page(self) -> None:
            if frames is None:
                self._json(provider.status())  # a provider without the page's parts: the JSON
                return
            page = (STATIC / "index.html").read_text(encoding="utf-8")
            page = page.replace("{{csrf}}", auth.csrf_token(self.identity))
            page = page.replace("{{user}}", _attr(self.identity.name))
            page = page.replace("{{can_act}}", "true" if self.identity.can_act else "false")
            self._send(200, page.encode(), "text/html; charset=utf-8")

        def _static(self, name: str) -> None:
            """Only plain names of the folder's own files: no separator, no "..", no NUL, nothing
            too long for the file system (each of which raised and answered 500 before)."""
            path = STATIC / name
            if not STATIC_FILE.fullmatch(name) or not path.is_file():
                self._text(404, "not found\n")
                return
            self._send(200, path.read_bytes(), STATIC_TYPES[path.suffix])

        def _live_jpeg(self) -> None:
            latest, data = frames.jpeg()
            if not data:
                self._text(404, "no image yet\n")
                return
            self._send(200, data, "image/jpeg", {"X-Frame-Sequence": str(latest.sequence)})

        def _peer_gone(self) -> bool:
            """True when the viewer has gone: it closed (a peek reads end of stream) or the kernel
            declared it dead (keep-alive, user timeout). Streams check between writes, so a
            closed tab does not hold its thread until the next frame, which an idle cell never sends."""
            poller = select.poll()  # the socket has a timeout: a bare recv would wait for it
            poller.register(self.connection, select.POLLIN)
            try:
                if not poller.poll(0):
                    return False  # nothing to read and no error: still there
                return self.connection.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                return True

        def _stream_headers(self, content_type: str) -> bool:
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.send_header("X-Accel-Buffering", "no")  # nginx: pass each event on at once
            self.end_headers()
            return self.command != "HEAD"  # a HEAD gets the headers only

        def _events(self) -> None:
            """Server-sent events: `frame` at each publication (the page then loads /live.jpg)."""
            if not self._stream_headers("text/event-stream"):
                return
            frames.viewer(+1)
            try:
                seen = -1
                while not (stopping.is_set() or frames.closed):
                    latest = frames.wait(seen, KEEPALIVE_S)
                    if stopping.is_set() or frames.closed:
                        break
                    if latest.version == seen:
                        if self._peer_gone():
                            break
                        self.wfile.write(b": keep-alive\n\n")
                    else:
                        seen = latest.version
                        data = {"version": latest.version, "sequence": latest.sequence,
                                "time": latest.time, "error": latest.error}  # fmt: skip
                        self.wfile.write(f"event: frame\ndata: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()
            finally:
                frames.viewer(-1)

        def _mjpeg(self) -> None:
            """multipart/x-mixed-replace: for an <img> elsewhere (a line dashboard) or a video tool.
            Each part ends with the next boundary, so a browser shows it without waiting for more."""
            if not self._stream_headers("multipart/x-mixed-replace; boundary=binpickframe"):
                return
            frames.viewer(+1)
            try:
                self.wfile.write(b"--binpickframe\r\n")
                seen = 0 if frames.latest.version == 0 else -1
                while not (stopping.is_set() or frames.closed):
                    latest = frames.wait(seen, KEEPALIVE_S)
                    if stopping.is_set() or frames.closed:
                        continue
                    if latest.version == seen:  # nothing new: an idle cell writes nothing
                        if self._peer_gone():
                            break
                        continue
                    seen = latest.version
                    _, data = frames.jpeg()
                    head = (
                        f"Content-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n"
                        f"X-Frame-Sequence: {latest.sequence}\r\n\r\n"
                    )
                    self.wfile.write(head.encode() + data + b"\r\n--binpickframe\r\n")
                    self.wfile.flush()
            finally:
                frames.viewer(-1)

        def _thumbnail(self, sequence: str) -> None:
            # ASCII digits only, at most as many as a sequence id has: str.isdigit() took "²",
            # which int() refuses, and int() refuses more than 4300 digits
            data = history.thumbnail(int(sequence)) if PICK_FILE.fullmatch(sequence) else b""
            if data:
                # a pick's thumbnail never changes: the browser keeps it (not a shared cache: the
                # page needs credentials). Sequence ids recur (at a restart, after 65535), so the
                # page asks for /picks/N.jpg?t=<the pick's time>: a new pick is a new URL.
                self._send(200, data, "image/jpeg", {"Cache-Control": "private, max-age=3600"})
            else:
                self._text(404, "no such pick\n")

        def _snapshot_file(self, rest: str) -> None:
            ring = provider.snapshots
            name, _, file = rest.partition("/")
            if name not in ring.list():
                self._text(404, "no such snapshot\n")
                return
            folder = ring.folder / name
            if not file:
                self._send(200, _snapshot_index(name, folder).encode(), "text/html; charset=utf-8")
            elif SNAPSHOT_FILE.match(file) and (folder / file).is_file():
                kind = "image/png" if file.endswith(".png") else "application/json"
                self._send(200, (folder / file).read_bytes(), kind)
            else:
                self._text(404, "no such file\n")

        # ------------------------------------------------------------------ POST (actions)
        def do_POST(self) -> None:  # noqa: N802
            self._guarded(self._post_request)

        def _post_request(self) -> None:
            if not self._authenticate():
                return
            if not self._read_body():
                return
            path = urlsplit(self.path).path
            if path != "/snapshot":
                self._text(404, "not found\n")
                return
            who = f"{self.identity.name}@{self.client_address[0]}"
            if not self.identity.can_act:
                log.warning("action %s by %s refused: viewer only", path, who)
                self._text(403, "forbidden: this user may view, not act\n")
                return
            ok, why = auth.csrf_ok(self.identity, self.headers, self.headers.get("Host", ""))
            if not ok:
                log.warning("action %s by %s refused: %s", path, who, why)
                self._text(403, f"forbidden: {why}\n")
                return
            try:
                folder = provider.snapshot("on-demand")
            except Exception as exc:  # report, never kill the page
                log.error("action snapshot by %s failed: %s", who, exc)
                if history is not None:
                    history.action(self.identity.name, "snapshot", f"failed: {exc}")
                self._text(500, f"snapshot failed: {exc}\n")
                return
            log.info("action snapshot by %s: %s", who, folder)
            if history is not None:
                history.action(self.identity.name, "snapshot", Path(folder).name)
            self._json({"snapshot": folder, "name": Path(folder).name, "by": self.identity.name})

    return Handler


CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'"
)


def _attr(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def _snapshot_index(name: str, folder: Path) -> str:
    files = sorted(p.name for p in folder.iterdir() if SNAPSHOT_FILE.match(p.name))
    images = "".join(
        f"<figure><img src='{f}' alt='{f}'><figcaption>{f}</figcaption></figure>"
        for f in files
        if f.endswith(".png")
    )
    links = " · ".join(f"<a href='{f}'>{f}</a>" for f in files)
    result = (folder / "result.json").read_text() if (folder / "result.json").is_file() else "{}"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
        f"<title>snapshot {_attr(name)}</title><link rel='stylesheet' href='/static/app.css'></head>"
        f"<body class='snapshot'><header><a href='/'>&larr; binpick</a><h1>{_attr(name)}</h1></header>"
        f"<p>{links}</p><pre>{_attr(result)}</pre><div class='figures'>{images}</div></body></html>"
    )
