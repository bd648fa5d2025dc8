"""Who may see the status page and who may act on it: salted password hashes, HTTP basic and
bearer credentials, and the CSRF rules of every action.

Credentials live in the configuration (`[health] users` / `tokens`) as `NAME:ROLE:HASH`, the hash
made by `binpick hash-password` (hashlib.scrypt, a random salt per entry; the stdlib holds all it
takes). Roles: "viewer" sees the page, "operator" also acts (POST). Scrypt costs tens of
milliseconds on purpose, so a verified Authorization header is remembered (by its SHA-256) for a
few minutes: a page that polls does not pay it on every request.

CSRF: every action is a POST that must carry `X-CSRF-Token`, an HMAC of the user name under a key
drawn at start (so it lives as long as the process, one per user), and whose Origin / Referer, when
the browser sends one, names this very host. A request from another site cannot read the token
and a browser always sends its Origin on a cross-site POST.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from edge.log_limit import LOG_INTERVAL_S, HostLogLimit

if TYPE_CHECKING:
    from email.message import Message

log = logging.getLogger(__name__)

ROLES = ("viewer", "operator")
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
#: the memory one scrypt check may take: OpenSSL's own default (what hashlib.scrypt allows when
#: given no maxmem), passed explicitly so that the load-time check and the check itself agree
SCRYPT_MAXMEM = 32 * 1024 * 1024
#: at most this many times the work (N * r * p) of a `binpick hash-password` hash: a costlier one
#: makes every uncached request of that user wait seconds, holding one of the two scrypt slots
MAX_WORK_FACTOR = 16
SALT_BYTES = (8, 64)  # hash-password draws 16; fewer than 8 is no salt worth the name
DIGEST_BYTES = (16, 64)  # hash-password writes 32; a short digest lets many passwords match
HASH_FORMAT = "a hash 'scrypt$N$r$p$SALT$HASH' from `binpick hash-password`"
CACHE_SECONDS = 300.0
CACHE_ENTRIES = 256
#: at most this many scrypt checks at once (each takes ~16 MiB and tens of ms of a core): a flood of
#: guesses queues here instead of exhausting the appliance's memory and CPUs
SCRYPT_SLOTS = threading.BoundedSemaphore(2)
#: failed credential checks one address may make at once before it is slowed down, and how often it
#: earns one more: each check is tens of milliseconds of a core, so a client guessing passwords in a
#: loop took both scrypt slots for as long as it liked (a 2-core box's cycle ran 3 times slower)
LOGIN_FAILURES_BURST = 10
LOGIN_FAILURE_REFILL_S = 6.0  # 10 a minute, sustained: about 1 % of a core per guessing address
_dummy_lock = threading.Lock()
_dummy_hash: str | None = None


def _dummy() -> str:
    """A hash computed once, checked for an unknown user name so it costs what a known one does."""
    global _dummy_hash
    with _dummy_lock:
        if _dummy_hash is None:
            _dummy_hash = hash_secret(secrets.token_hex(16))
        return _dummy_hash


def local_host(host: str | None) -> bool:
    """True when a Host header names this machine's loopback (`localhost`, `127.0.0.1`, `[::1]` or
    another loopback address, with or without a port). A DNS-rebound name never does."""
    host = (host or "").strip().lower()
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return False
        name, rest = host[1:end], host[end + 1 :]
    else:
        name, colon, port = host.partition(":")
        rest = colon + port
    if rest and not (rest.startswith(":") and rest[1:].isascii() and rest[1:].isdigit()):
        return False
    return loopback_address(name)


def loopback_address(name: str) -> bool:
    """True for `localhost` or a loopback address; other names count as beyond loopback (the one
    rule for binds, in edge/config.py and the status server, and for Host headers above)."""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class CredentialError(ValueError):
    """A malformed credential entry; the message names the entry and what was expected."""


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$SALT$HASH` (base64) of a password or token, with a fresh 16-byte salt."""
    if not secret:
        raise CredentialError("an empty password or token is not accepted")
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=SCRYPT_MAXMEM, dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


@dataclass(frozen=True)
class ScryptHash:
    """The parts of a `scrypt$N$r$p$SALT$HASH` entry, checked to be ones hashlib.scrypt accepts."""

    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def parse_hash(encoded: str) -> ScryptHash:
    """The parts of a stored hash; CredentialError saying which part is wrong (never the salt or
    the digest themselves). Why so strict: a hash that scrypt refuses (N not a power of 2, more
    memory than it may take) would otherwise load fine and then fail every login as a wrong
    password, locking its user out without a word."""
    fields = encoded.split("$")
    if len(fields) != 6 or fields[0] != "scrypt":
        raise CredentialError(f"expected {HASH_FORMAT}")
    costs, problem = _costs(fields[1:4])
    problem = problem or _cost_problem(*costs)
    salt, salt_problem = _base64_part("salt", fields[4], SALT_BYTES, 16)
    digest, digest_problem = _base64_part("hash", fields[5], DIGEST_BYTES, 32)
    problem = problem or salt_problem or digest_problem
    if problem:
        raise CredentialError(f"{problem}: make the entry again with `binpick hash-password`")
    return ScryptHash(*costs, salt, digest)


def _costs(fields: list[str]) -> tuple[tuple[int, int, int], str]:
    """(N, r, p) and "", or zeros and the problem: each ASCII digits (str.isdigit also takes other
    scripts' digits), at most 10 of them (int() refuses thousands of digits; no cost needs more)."""
    for label, text in zip("Nrp", fields, strict=True):
        if not (text.isascii() and text.isdigit() and len(text) <= 10):
            return (0, 0, 0), f"scrypt {label} = {text[:12]!r}: expected a whole number"
    n, r, p = (int(text) for text in fields)
    return (n, r, p), ""


def _cost_problem(n: int, r: int, p: int) -> str:
    """Why scrypt would refuse (or take too long on) these costs, "" when it would not: the rules
    of hashlib.scrypt and OpenSSL's EVP_PBE_scrypt, memory included, and `MAX_WORK_FACTOR`."""
    if n < 2 or n & (n - 1):
        return f"scrypt N = {n}: expected a power of 2 above 1 (hash-password writes {SCRYPT_N})"
    if r < 1 or p < 1:
        return (
            f"scrypt r = {r}, p = {p}: expected positive whole numbers (hash-password writes "
            f"{SCRYPT_R} and {SCRYPT_P})"
        )
    if r * p >= 2**30 or (16 * r < 64 and n >= 2 ** (16 * r)):
        return f"scrypt N = {n}, r = {r}, p = {p}: expected r * p < 2**30 and N < 2**(16 r), scrypt's limits"
    memory = 128 * r * (n + 2) + 128 * r * p
    if memory > SCRYPT_MAXMEM:
        return (
            f"scrypt N = {n}, r = {r}, p = {p}: a check would take {memory} bytes, expected at most "
            f"{SCRYPT_MAXMEM} ({SCRYPT_MAXMEM // 2**20} MiB, what hashlib.scrypt allows)"
        )
    work = n * r * p / (SCRYPT_N * SCRYPT_R * SCRYPT_P)
    if work > MAX_WORK_FACTOR:
        return (
            f"scrypt N = {n}, r = {r}, p = {p}: a check would cost {work:g} times a hash-password "
            f"hash, expected at most {MAX_WORK_FACTOR} times (every login would wait seconds)"
        )
    return ""


def _base64_part(label: str, text: str, size: tuple[int, int], usual: int) -> tuple[bytes, str]:
    """The salt or the digest, strict base64 of `size` bytes (low, high), and "" or the problem."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        return b"", f"the {label} is not valid base64"
    if not size[0] <= len(raw) <= size[1]:
        return raw, (
            f"the {label} is {len(raw)} bytes: expected {size[0]} to {size[1]} (hash-password writes {usual})"
        )
    return raw, ""


def verify_secret(secret: str, encoded: str) -> bool:
    """True when `secret` matches the `scrypt$...` hash (constant-time comparison).

    CredentialError when the hash cannot be checked at all (malformed, or scrypt refuses it): the
    configuration refuses such hashes when it is loaded, so this is a fault to log, and telling
    it apart from a wrong password is what lets the caller say so."""
    parsed = parse_hash(encoded)
    try:
        data = secret.encode()
    except UnicodeEncodeError:  # a lone surrogate: no hash was ever made from such text
        return False
    try:
        got = hashlib.scrypt(
            data, salt=parsed.salt, n=parsed.n, r=parsed.r, p=parsed.p,
            maxmem=SCRYPT_MAXMEM, dklen=len(parsed.digest),
        )  # fmt: skip
    except (ValueError, OverflowError) as exc:
        raise CredentialError(
            f"scrypt refuses its parameters ({exc}): make the entry again with `binpick hash-password`"
        ) from None
    return hmac.compare_digest(got, parsed.digest)


@dataclass(frozen=True)
class Credential:
    name: str
    role: str
    hash: str

    @property
    def can_act(self) -> bool:
        return self.role == "operator"


def valid_name(name: str) -> bool:
    """A user or token name an entry can hold: printable, no spaces, no colons (the separator)."""
    return bool(name) and name.isprintable() and " " not in name and ":" not in name


def parse_credentials(entries: list[str]) -> list[Credential]:
    """`NAME:ROLE:HASH` entries, validated (names unique, role known, hash one that scrypt can
    check: `parse_hash`)."""
    out: list[Credential] = []
    for entry in entries:
        parts = entry.split(":")
        if len(parts) != 3:
            raise CredentialError(f"{_redact(entry)!r}: expected 'NAME:ROLE:HASH'")
        name, role, hashed = parts
        if not valid_name(name):
            raise CredentialError(f"{_redact(entry)!r}: expected a user name without spaces or colons")
        if role not in ROLES:
            raise CredentialError(f"{_redact(entry)!r}: role {role!r}, expected one of {', '.join(ROLES)}")
        try:
            parse_hash(hashed)
        except CredentialError as exc:
            raise CredentialError(f"{_redact(entry)!r}: {exc}") from None
        if any(c.name == name for c in out):
            raise CredentialError(f"user {name!r} is listed twice")
        out.append(Credential(name, role, hashed))
    return out


def _redact(entry: str) -> str:
    head = entry.split(":")[:2]
    return ":".join(head) + (":..." if entry.count(":") >= 2 else "")


class LoginThrottled(Exception):
    """Too many failed credential checks from one address: answer 429, `retry_after_s` later."""

    def __init__(self, host: str, retry_after_s: float) -> None:
        self.retry_after_s = math.ceil(retry_after_s)  # whole seconds, as Retry-After says
        super().__init__(f"too many failed logins from {host}: try again in {self.retry_after_s} s")


class FailedLogins:
    """Each address's (an IPv6 client's /64) budget of failed credential checks: `burst` at once,
    one more every `refill_s` (a token bucket). A check takes one unit before it runs, so that
    many connections opened at once cannot all start one, and a success gives it back: an
    operator who logs in never spends the budget; one who mistypes ten times waits `refill_s`
    for the next try.

    Why per address and not per user: guessing for one user must not lock that user out from
    everywhere. Behind a reverse proxy every request comes from the proxy's address, so guesses
    arriving through it slow the fresh logins of everyone else behind it too (cached logins, the
    page's polling, are never checked again and pass). Thread-safe, bounded: when full, the
    addresses charged longest ago are forgotten first (they get their burst back)."""

    def __init__(
        self,
        burst: int = LOGIN_FAILURES_BURST,
        refill_s: float = LOGIN_FAILURE_REFILL_S,
        clock: Callable[[], float] = time.monotonic,
        max_hosts: int = 4096,
    ) -> None:
        self.burst = burst
        self.refill_s = refill_s
        self._clock = clock
        self._max_hosts = max_hosts
        self._lock = threading.Lock()
        # host: (units left, when counted), least recently charged first
        self._hosts: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _left(self, host: str, now: float) -> float:
        units, then = self._hosts.get(host, (float(self.burst), now))
        return min(float(self.burst), units + (now - then) / self.refill_s)

    def take(self, host: str) -> float:
        """0.0 when `host` may run a check (one unit taken), else the seconds until it may."""
        host = _client_key(host)
        with self._lock:
            now = self._clock()
            units = self._left(host, now)
            if units < 1.0:
                self._hosts.move_to_end(host)  # still guessing: the last to be forgotten
                return (1.0 - units) * self.refill_s
            self._hosts.pop(host, None)  # re-inserted last: the table is oldest-touched first
            if len(self._hosts) >= self._max_hosts:
                # full buckets hold nothing worth keeping; then the longest untouched go, one by
                # one (clearing the table let a client with thousands of addresses reset everyone)
                self._hosts = OrderedDict(
                    (h, v) for h, v in self._hosts.items() if self._left(h, now) < self.burst
                )
                while len(self._hosts) >= self._max_hosts:
                    self._hosts.popitem(last=False)
            self._hosts[host] = (units - 1.0, now)
            return 0.0

    def give_back(self, host: str) -> None:
        """The check succeeded: its unit is returned."""
        host = _client_key(host)
        with self._lock:
            now = self._clock()
            if host in self._hosts:
                self._hosts[host] = (min(float(self.burst), self._left(host, now) + 1.0), now)


def _client_key(host: str) -> str:
    """The address a budget belongs to: an IPv6 client's /64 (one host or LAN is given a whole
    /64 and can pick any address in it), any other address as it is."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6 and address.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return host


@dataclass(frozen=True)
class Identity:
    """Who made a request: `name` for the log, `can_act` for POSTs."""

    name: str
    can_act: bool


class Authenticator:
    """Checks a request's Authorization header against the configured users and tokens."""

    def __init__(self, users: list[str], tokens: list[str], open_access: bool):
        self.users = {c.name: c for c in parse_credentials(users)}
        self.tokens = parse_credentials(tokens)
        #: no credentials configured (allowed on a loopback bind only): everyone is "local", acting
        self.open = open_access and not (self.users or self.tokens)
        self._key = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, tuple[float, Identity]] = OrderedDict()
        self._lock = threading.Lock()
        self._fault_log = HostLogLimit()
        self.failed_logins = FailedLogins()
        self._throttle_log = HostLogLimit()

    def identify(self, authorization: str | None, host: str = "") -> Identity | None:
        """The identity of a request from address `host`, or None (answer 401).

        LoginThrottled (answer 429) when `host` has used its budget of failed checks
        (`FailedLogins`): then no scrypt runs. A request without credentials (a browser's first,
        before it asks for them) and credentials verified earlier (cached) cost nothing and pass."""
        if self.open:
            return Identity("local", True)
        if not authorization:
            return None
        key = hashlib.sha256(authorization.encode("utf-8", "replace")).digest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        wait = self.failed_logins.take(host)
        if wait:
            if self._throttle_log.first(host, "throttled"):
                log.warning(
                    "status page: %s failed to log in %d times in quick succession (password "
                    "guessing?): its further attempts are answered 429 without a check, one more "
                    "allowed every %g s; not logged again for this host for %.0f s",
                    host or "a client", self.failed_logins.burst, self.failed_logins.refill_s,
                    LOG_INTERVAL_S,
                )  # fmt: skip
            raise LoginThrottled(host or "this address", wait)
        identity = self._check(authorization)
        if identity is not None:
            self.failed_logins.give_back(host)
        with self._lock:
            self._cache.pop(key, None)
            if identity is not None:  # failures are not remembered: guesses cannot fill it
                while len(self._cache) >= CACHE_ENTRIES:
                    self._cache.popitem(last=False)  # the oldest goes
                self._cache[key] = (now, identity)
        return identity

    def _verify(self, secret: str, encoded: str, who: str) -> bool:
        """Whether `secret` matches; a hash that cannot be checked (which the configuration check
        should have refused) is logged as an error naming `who`, never the secret, at most once
        a minute, and counts as a mismatch: otherwise its user is locked out without a word."""
        with SCRYPT_SLOTS:
            try:
                return verify_secret(secret, encoded)
            except CredentialError as exc:
                if self._fault_log.first(who, "hash"):
                    log.error(
                        "%s: its password hash cannot be checked, so every login as it fails: %s",
                        who,
                        exc,
                    )
                return False

    def _check(self, authorization: str) -> Identity | None:
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            try:
                name, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            user = self.users.get(name)
            # an unknown name runs scrypt on a dummy hash: its answer takes as long as a known one's
            if user is None:
                ok = self._verify(password, _dummy(), "the dummy hash")
            else:
                ok = self._verify(password, user.hash, f"health.users: user {user.name!r}")
            if user is not None and ok:
                return Identity(user.name, user.can_act)
            return None
        if scheme.lower() == "bearer" and value:
            for token in self.tokens:
                if self._verify(value, token.hash, f"health.tokens: token {token.name!r}"):
                    return Identity(token.name, token.can_act)
        return None

    def csrf_token(self, identity: Identity) -> str:
        """The token the page sends back with each action (per user, per process)."""
        return hmac.new(self._key, identity.name.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, identity: Identity, headers: Message, host: str) -> tuple[bool, str]:
        """(allowed, why not) for an action by `identity` with these request headers.

        The token is required whenever credentials are configured, and from any browser (it sends
        Origin, Referer or Sec-Fetch-Site); a script on an open loopback page (curl) needs none.
        """
        origin = headers.get("Origin")
        referer = headers.get("Referer")
        fetch_site = headers.get("Sec-Fetch-Site")
        for label, url in (("Origin", origin), ("Referer", referer)):
            if url is not None and urlsplit(url).netloc != host:
                return False, f"{label} {url!r} is not this page ({host})"
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            return False, f"Sec-Fetch-Site {fetch_site!r}"
        browser = origin is not None or referer is not None or fetch_site is not None
        if self.open and not browser:
            return True, ""
        # compared as bytes: compare_digest raises TypeError on a str with non-ASCII characters,
        # which a header may hold (http.client decodes it as Latin-1), and that answered 500
        token = (headers.get("X-CSRF-Token") or "").encode("utf-8", "replace")
        if not hmac.compare_digest(token, self.csrf_token(identity).encode()):
            return False, "missing or wrong X-CSRF-Token"
        return True, ""
