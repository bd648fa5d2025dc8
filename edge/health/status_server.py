"""The local status page: HTML at /, JSON at /status.json, Prometheus at /metrics,
the last annotated image at /overlay.png, and POST /snapshot for an on-demand snapshot.

stdlib `ThreadingHTTPServer` in a daemon thread: a few requests a minute from a technician's
browser and a Prometheus scraper do not justify a web framework on the appliance.
"""

from __future__ import annotations

import html
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)


class StatusProvider:
    """What the page shows; the supervisor implements these."""

    status: Callable[[], dict]
    metrics: Callable[[], str]
    overlay_png: Callable[[], bytes]
    snapshot: Callable[[str], str]


def render_html(status: dict) -> str:
    def cell(value) -> str:
        return html.escape(json.dumps(value, indent=1, default=str))

    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td><pre>{cell(v)}</pre></td></tr>" for k, v in status.items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='2'>"
        f"<title>binpick: {html.escape(str(status.get('state', '?')))}</title>"
        "<style>body{font-family:sans-serif}th{text-align:left;vertical-align:top;padding-right:1em}"
        "pre{margin:0}</style></head><body>"
        f"<h1>binpick — {html.escape(str(status.get('state', '?')))}</h1>"
        "<p><img src='/overlay.png' width='512' alt='last annotated image'></p>"
        "<form method='post' action='/snapshot'><button>Take a snapshot</button></form>"
        f"<table>{rows}</table><p><a href='/metrics'>metrics</a> · <a href='/status.json'>json</a></p>"
        "</body></html>"
    )


class StatusServer:
    def __init__(self, provider: StatusProvider, host: str, port: int):
        handler = _make_handler(provider)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.address = self.httpd.server_address[:2]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="status-http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _make_handler(provider: StatusProvider):
    class Handler(BaseHTTPRequestHandler):
        server_version = "binpick"

        def log_message(self, fmt, *args):  # route to logging, not stderr
            log.debug("http %s: " + fmt, self.address_string(), *args)

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802 - http.server's naming
            try:
                self._get(self.path.split("?")[0])
            except Exception as exc:  # a status bug must show up on the page, not kill the request silently
                log.exception("status page %s failed", self.path)
                self._send(500, f"status page error: {exc}\n".encode(), "text/plain")

        def _get(self, path: str) -> None:
            if path == "/":
                self._send(200, render_html(provider.status()).encode(), "text/html; charset=utf-8")
            elif path == "/status.json":
                self._send(200, json.dumps(provider.status(), default=str).encode(), "application/json")
            elif path == "/metrics":
                self._send(200, provider.metrics().encode(), "text/plain; version=0.0.4; charset=utf-8")
            elif path == "/overlay.png":
                png = provider.overlay_png()
                if png:
                    self._send(200, png, "image/png")
                else:
                    self._send(404, b"no image yet\n", "text/plain")
            else:
                self._send(404, b"not found\n", "text/plain")

        def do_POST(self):  # noqa: N802
            if self.path.split("?")[0] != "/snapshot":
                self._send(404, b"not found\n", "text/plain")
                return
            try:
                folder = provider.snapshot("on-demand")
            except Exception as exc:  # report, never kill the page
                self._send(500, f"snapshot failed: {exc}\n".encode(), "text/plain")
                return
            self._send(200, json.dumps({"snapshot": folder}).encode(), "application/json")

    return Handler
