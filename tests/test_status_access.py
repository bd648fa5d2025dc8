"""Access to the status page: credentials, viewer and operator rights, CSRF, and the configuration
rules (no bind beyond loopback without credentials). Real HTTP requests to a server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from appliance_helpers import ROOT, free_port

from edge.config import ConfigError, load_config, parse_config
from edge.health.auth import Authenticator, CredentialError, hash_secret, parse_credentials, verify_secret
from edge.health.history import CellHistory
from edge.health.live import FrameHub
from edge.health.status_server import StatusServer
from edge.plc.register_map import RegisterMap

pytestmark = pytest.mark.timeout(60)

ALICE = f"alice:operator:{hash_secret('alice-pass')}"
BOB = f"bob:viewer:{hash_secret('bob-pass')}"
SCRAPER = f"prometheus:viewer:{hash_secret('scrape-token-123')}"


class Provider:
    """A status provider with the page's parts (frame hub, history) and a snapshot counter."""

    def __init__(self):
        self.frames = FrameHub(lambda: b"\xff\xd8 jpeg \xff\xd9")
        self.history = CellHistory(RegisterMap.load().pick_outcome)
        self.snapshots_taken = []
        self.snapshots = None

    def status(self):
        return {"state": "running"}

    def metrics(self):
        return "binpick_up 1\n"

    def overlay_png(self):
        return b""

    def overview(self):
        return {"cell": {"state": "running", "reason": "test"}}

    def snapshot(self, reason):
        self.snapshots_taken.append(reason)
        return f"/tmp/snap-{len(self.snapshots_taken)}"


@pytest.fixture
def server():
    provider = Provider()
    srv = StatusServer(provider, "127.0.0.1", free_port(), users=[ALICE, BOB], tokens=[SCRAPER])
    srv.start()
    try:
        yield f"http://127.0.0.1:{srv.address[1]}", provider, srv
    finally:
        srv.stop()


def call(url: str, method: str = "GET", user: str = "", password: str = "", headers: dict | None = None):
    """(status, body, headers) of one request."""
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if user:
        request.add_header(
            "Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        )
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers


def csrf_of(base: str, user: str, password: str) -> str:
    _, page, _ = call(f"{base}/", user=user, password=password)
    marker = b'name="csrf-token" content="'
    start = page.index(marker) + len(marker)
    return page[start : page.index(b'"', start)].decode()


def test_without_credentials_every_path_is_401_and_nothing_else(server):
    base, provider, _ = server
    for path in ("/", "/status.json", "/metrics", "/live.jpg", "/live.mjpg", "/events", "/api/overview.json"):
        status, body, headers = call(base + path)
        assert (status, body) == (401, b""), path
        assert headers["WWW-Authenticate"].startswith("Basic realm=")
    assert call(base + "/status.json", user="alice", password="wrong")[0] == 401
    assert call(base + "/status.json", user="mallory", password="alice-pass")[0] == 401
    assert call(base + "/snapshot", "POST")[:2] == (401, b"")
    assert provider.snapshots_taken == []


def test_viewers_see_operators_act_with_the_csrf_token(server, caplog):
    base, provider, _ = server
    caplog.set_level(logging.INFO, logger="edge.health.status_server")
    assert json.loads(call(f"{base}/status.json", user="bob", password="bob-pass")[1]) == {"state": "running"}
    status, body, _ = call(
        f"{base}/metrics", headers={"Authorization": "Bearer scrape-token-123"}
    )  # a Prometheus scraper's bearer token
    assert (status, body) == (200, b"binpick_up 1\n")
    assert call(f"{base}/metrics", headers={"Authorization": "Bearer wrong"})[0] == 401

    bob_token = csrf_of(base, "bob", "bob-pass")
    status, body, _ = call(f"{base}/snapshot", "POST", "bob", "bob-pass", {"X-CSRF-Token": bob_token})
    assert status == 403 and b"view, not act" in body

    alice_token = csrf_of(base, "alice", "alice-pass")
    assert alice_token != bob_token
    assert call(f"{base}/snapshot", "POST", "alice", "alice-pass")[0] == 403  # no token
    assert call(f"{base}/snapshot", "POST", "alice", "alice-pass", {"X-CSRF-Token": bob_token})[0] == 403
    host = base.removeprefix("http://")
    foreign = {"X-CSRF-Token": alice_token, "Origin": "http://evil.example"}
    status, body, _ = call(f"{base}/snapshot", "POST", "alice", "alice-pass", foreign)
    assert status == 403 and b"Origin" in body
    assert provider.snapshots_taken == []

    same = {"X-CSRF-Token": alice_token, "Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"}
    status, body, _ = call(f"{base}/snapshot", "POST", "alice", "alice-pass", same)
    assert status == 200 and json.loads(body)["by"] == "alice"
    assert provider.snapshots_taken == ["on-demand"]
    assert provider.history.view()["actions"][0]["who"] == "alice"
    messages = [r.getMessage() for r in caplog.records]
    assert any("action snapshot by alice@127.0.0.1" in m for m in messages)
    assert any("by bob@127.0.0.1 refused" in m for m in messages)


def test_a_csrf_token_with_non_ascii_characters_is_refused_not_a_500(server, caplog):
    """Before: hmac.compare_digest raised TypeError on the header's non-ASCII text (Latin-1 on
    the wire), which answered 500 and wrote an ERROR line per request."""
    import http.client

    base, provider, srv = server
    caplog.set_level(logging.INFO, logger="edge.health.status_server")
    alice = "Basic " + base64.b64encode(b"alice:alice-pass").decode()
    for token in ("\u00e9t\u00e9", csrf_of(base, "alice", "alice-pass")[:-1] + "\u00ff"):
        conn = http.client.HTTPConnection("127.0.0.1", srv.address[1], timeout=10)
        try:
            headers = {"Authorization": alice, "X-CSRF-Token": token}
            conn.request("POST", "/snapshot", body=b"", headers=headers)
            response = conn.getresponse()
            status, body = response.status, response.read()
        finally:
            conn.close()
        assert (status, body) == (403, b"forbidden: missing or wrong X-CSRF-Token\n")
    assert provider.snapshots_taken == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_open_loopback_page_accepts_scripts_but_checks_browsers():
    provider = Provider()
    srv = StatusServer(provider, "127.0.0.1", free_port())
    srv.start()
    base = f"http://127.0.0.1:{srv.address[1]}"
    try:
        assert call(f"{base}/snapshot", "POST")[0] == 200  # curl on the appliance itself
        cross = {"Origin": "http://evil.example"}
        assert call(f"{base}/snapshot", "POST", headers=cross)[0] == 403  # a page of another site
        same_no_token = {"Origin": base, "Sec-Fetch-Site": "same-origin"}
        assert call(f"{base}/snapshot", "POST", headers=same_no_token)[0] == 403
        token = csrf_of(base, "", "")
        assert call(f"{base}/snapshot", "POST", headers={**same_no_token, "X-CSRF-Token": token})[0] == 200
        assert provider.snapshots_taken == ["on-demand", "on-demand"]
    finally:
        srv.stop()


def test_a_server_beyond_loopback_refuses_to_start_without_credentials():
    with pytest.raises(ValueError, match="needs users or tokens"):
        StatusServer(Provider(), "0.0.0.0", free_port())


def config_text(health: str, plc: str = "") -> str:
    return f"""
[plc]
registers = "{ROOT / "firmware_config" / "registers.toml"}"
{plc}
[health]
{health}
"""


def test_configuration_refuses_a_bind_beyond_loopback_without_credentials(tmp_path):
    path = tmp_path / "cell.toml"
    with pytest.raises(ConfigError) as err:
        parse_config(config_text('http_host = "0.0.0.0"'), path, check_files=False)
    message = str(err.value)
    assert "\n" not in message and "health.http_host = '0.0.0.0' is beyond loopback" in message
    assert "binpick hash-password" in message
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.5"):
        parse_config(config_text(f'http_host = "{host}"'), path, check_files=False)
    ok = parse_config(config_text(f'http_host = "0.0.0.0"\nusers = ["{ALICE}"]'), path, check_files=False)
    assert ok.health.users == [ALICE]
    with pytest.raises(ConfigError, match="health.users: 'alice:admin:...': role 'admin'"):
        parse_config(config_text('users = ["alice:admin:scrypt$1$1$1$a$b"]'), path, check_files=False)
    with pytest.raises(ConfigError, match="expected a hash 'scrypt"):
        parse_config(config_text('users = ["alice:viewer:plaintext"]'), path, check_files=False)
    with pytest.raises(ConfigError, match="health.tokens = 'x': expected a list of strings"):
        parse_config(config_text('tokens = "x"'), path, check_files=False)
    with pytest.raises(ConfigError, match="plc.allowed_clients: '10.1.2.0/33'"):
        parse_config(config_text("", 'allowed_clients = ["10.1.2.0/33"]'), path, check_files=False)


def test_production_example_closes_the_network():
    text = (ROOT / "firmware_config" / "production.example.toml").read_text()
    c = parse_config(text, Path("/etc/binpick/binpick.toml"), check_files=False)
    assert c.plc.tcp_host == "0.0.0.0" and c.plc.allowed_clients and c.plc.readonly_clients


def test_hashes_are_salted_and_verified():
    first, second = hash_secret("same"), hash_secret("same")
    assert first != second and verify_secret("same", first) and verify_secret("same", second)
    assert not verify_secret("other", first)
    with pytest.raises(CredentialError, match="expected a hash 'scrypt"):
        verify_secret("same", "scrypt$garbage")  # not a wrong password: a hash that cannot be checked
    assert [c.role for c in parse_credentials([ALICE, BOB])] == ["operator", "viewer"]
    auth = Authenticator([ALICE], [], open_access=True)
    assert not auth.open and auth.identify(None) is None  # credentials configured: enforced on loopback too


def test_hash_password_subcommand(tmp_path):
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "edge", "hash-password", "carol", "--role", "operator", "--stdin"],
        input="carol-pass\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    entry = out.stdout.strip().strip('"')
    (credential,) = parse_credentials([entry])
    assert credential.name == "carol" and credential.can_act and verify_secret("carol-pass", credential.hash)


def damaged(field: int, value: str) -> str:
    """Alice's entry with one field of its hash (1 N, 2 r, 3 p, 4 salt, 5 digest) replaced."""
    name, role, hashed = ALICE.split(":")
    fields = hashed.split("$")
    fields[field] = value
    return f"{name}:{role}:{'$'.join(fields)}"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (1, "1638", "scrypt N = 1638: expected a power of 2 above 1"),  # 16384 mistyped
        (1, "1", "scrypt N = 1: expected a power of 2 above 1"),
        (2, "0", "scrypt r = 0, p = 1: expected positive whole numbers"),
        (3, "0", "scrypt r = 8, p = 0: expected positive whole numbers"),
        (1, "32768", "a check would take 33557504 bytes, expected at most 33554432"),  # over maxmem
        (2, "4096", "expected at most 33554432"),
        (3, "1000", "a check would cost 1000 times a hash-password hash"),
        (1, "\u0661\u0666", "scrypt N = '\u0661\u0666': expected a whole number"),  # Arabic digits
        (4, "c2FsdA=", "the salt is not valid base64"),
        (4, "c2FsdA==", "the salt is 4 bytes: expected 8 to 64"),
        (5, "aGFzaA==", "the hash is 4 bytes: expected 16 to 64"),  # 4 bytes: 1 password in 2**32 matches
    ],
)
def test_a_damaged_hash_is_refused_when_the_configuration_is_loaded(tmp_path, field, value, expected):
    """Each of these used to load, then fail every login of its user as a wrong password."""
    path = tmp_path / "cell.toml"
    path.write_text(config_text(f'users = ["{damaged(field, value)}"]'))
    with pytest.raises(ConfigError) as err:
        load_config(path, check_files=False)
    message = str(err.value)
    assert message.startswith(f"{path}: health.users: 'alice:operator:...': ") and expected in message
    assert "\n" not in message and "binpick hash-password" in message
    assert ALICE.split("$")[-1] not in message and ALICE.split("$")[-2] not in message  # no salt, no hash


def test_the_limits_leave_what_scrypt_accepts():
    """The cheapest and the costliest hashes the checks accept both verify."""
    for n, r, p in ((2, 1, 1), (2**14, 8, 16), (2**15, 4, 1)):
        salt = b"0123456789abcdef"
        digest = hashlib.scrypt(b"pw", salt=salt, n=n, r=r, p=p, dklen=32)
        b64 = base64.b64encode
        encoded = f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"
        (credential,) = parse_credentials([f"x:viewer:{encoded}"])
        assert verify_secret("pw", credential.hash) and not verify_secret("pv", credential.hash)


def test_a_hash_scrypt_refuses_at_login_is_logged_naming_the_user(server, caplog, monkeypatch):
    """Should a hash that passed the load check still be refused by scrypt (another OpenSSL, a
    FIPS build), its user's logins fail with an error in the log naming the user, not the secret,
    once however many requests, and a plain wrong password logs nothing."""
    base, _, _ = server
    caplog.set_level(logging.INFO, logger="edge.health.auth")
    assert call(f"{base}/status.json", user="alice", password="wrong")[0] == 401
    assert not [r for r in caplog.records if r.name == "edge.health.auth"]

    def refuse(*args, **kwargs):
        raise ValueError("[digital envelope routines] memory limit exceeded")

    monkeypatch.setattr(hashlib, "scrypt", refuse)
    for _ in range(3):
        assert call(f"{base}/status.json", user="alice", password="alice-pass")[0] == 401
    errors = [r for r in caplog.records if r.name == "edge.health.auth"]
    assert len(errors) == 1 and errors[0].levelno == logging.ERROR
    message = errors[0].getMessage()
    assert "health.users: user 'alice'" in message and "memory limit exceeded" in message
    assert "alice-pass" not in message and ALICE.split("$")[-1] not in message
