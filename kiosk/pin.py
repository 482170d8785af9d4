"""The staff PIN: stored only as a salted scrypt hash (`staff_pin_hash` in kiosk.toml, made by `footfall kiosk
pin`), checked with a per-source backoff, never the example's.

Why per source: a global lockout lets anyone keep the staff out by typing wrong PINs; with a backoff per source
(the TCP peer address), only the source that guesses waits, longer after each further wrong PIN.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from footfall.files import PRIVATE, write_private

logger = logging.getLogger(__name__)

EXAMPLE_PIN = "2468"  # the PIN of deploy/examples/kiosk.toml: refused at start-up
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB of memory per check, against an offline search
_HASH = re.compile(r"^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]{16,})\$([A-Za-z0-9_-]{43})$")

FREE_FAILURES = 5  # wrong PINs in a row from one source before it has to wait
FIRST_WAIT_S = 60.0  # then it waits this long, doubled after each further wrong PIN ...
MAX_WAIT_S = 15 * 60.0  # ... up to this
MAX_SOURCES = 10_000  # bounded memory whatever the number of sources


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_pin(pin: str) -> None:
    """Raise ValueError unless `pin` is 4 to 8 digits."""
    if not isinstance(pin, str) or not pin.isascii() or not pin.isdigit() or not 4 <= len(pin) <= 8:
        raise ValueError("must be 4 to 8 digits")


def weak_reason(pin: str) -> str | None:
    """Why a new PIN is too easy to guess (the example's, one digit repeated, a run up or down), or None."""
    if pin == EXAMPLE_PIN:
        return f"{EXAMPLE_PIN} is the example's PIN, printed in the documentation"
    if len(set(pin)) == 1:
        return "one digit repeated is the first thing anyone tries"
    steps = {(int(b) - int(a)) % 10 for a, b in zip(pin, pin[1:], strict=False)}
    if steps in ({1}, {9}, {2}, {8}):
        return "a run of digits up or down is the first thing anyone tries"
    return None


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash` of a checked PIN."""
    check_pin(pin)
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_hash(stored: str) -> None:
    """Raise ValueError unless `stored` looks like what `hash_pin` makes (config validation)."""
    m = _HASH.match(stored)
    if m is None or not (2 <= int(m[1]) <= 2**20 and (int(m[1]) & (int(m[1]) - 1)) == 0):
        raise ValueError(
            'must be a hash made by `footfall kiosk pin -c kiosk.toml` ("scrypt$..."), not the PIN itself'
        )
    if int(m[2]) * int(m[3]) > 64 or int(m[2]) < 1 or int(m[3]) < 1:
        raise ValueError("has scrypt parameters out of range")


def verify_pin(pin: object, stored: str) -> bool:
    if not isinstance(pin, str) or len(pin) > 64:
        return False
    m = _HASH.match(stored)
    if m is None:
        return False
    n, r, p = int(m[1]), int(m[2]), int(m[3])
    digest = hashlib.scrypt(
        pin.encode(), salt=_unb64(m[4]), n=n, r=r, p=p, dklen=32, maxmem=256 * r * n + 2**24
    )
    return hmac.compare_digest(digest, _unb64(m[5]))


def is_example(stored: str) -> bool:
    return verify_pin(EXAMPLE_PIN, stored)


class PinLimiter:
    """Wrong PINs per source: FREE_FAILURES free, then a wait that doubles with each further wrong PIN."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._failures: dict[str, tuple[int, float]] = {}  # source -> (wrong PINs in a row, time of the last)

    def _wait(self, count: int) -> float:
        if count < FREE_FAILURES:
            return 0.0
        return min(FIRST_WAIT_S * 2 ** (count - FREE_FAILURES), MAX_WAIT_S)

    def wait_left(self, source: str) -> float:
        """Seconds this source must still wait before its next try (0: it may try now)."""
        entry = self._failures.get(source)
        if entry is None:
            return 0.0
        count, last = entry
        return max(0.0, last + self._wait(count) - self.clock())

    def failed(self, source: str) -> float:
        """Record a wrong PIN; return the wait it brings (0 while it is still one of the free ones)."""
        now = self.clock()
        count, last = self._failures.get(source, (0, now))
        if now - last > 2 * MAX_WAIT_S:  # a long quiet time forgives the earlier wrong PINs
            count = 0
        count += 1
        self._failures[source] = (count, now)
        if len(self._failures) > MAX_SOURCES:
            oldest = min(self._failures, key=lambda s: self._failures[s][1])
            del self._failures[oldest]
        wait = self._wait(count)
        if wait:
            logger.warning(
                "wrong staff PIN from %s (%d in a row): that source must wait %d s", source, count, wait
            )
        else:
            logger.warning("wrong staff PIN from %s (%d in a row)", source, count)
        return wait

    def succeeded(self, source: str) -> None:
        self._failures.pop(source, None)


# --- `footfall kiosk pin`: write the hash into kiosk.toml --------------------------------------------------

_SECTION = re.compile(r"^\s*\[\s*kiosk\s*\]\s*(#.*)?$")
_ANY_SECTION = re.compile(r"^\s*\[")
_PIN_LINE = re.compile(r"^\s*staff_pin(_hash)?\s*=")


def with_pin_hash(text: str, stored: str) -> str:
    """kiosk.toml's text with `staff_pin_hash` set to `stored` in [kiosk] (replacing any staff_pin or earlier
    staff_pin_hash line); every other line and comment stays as it was."""
    line = f'staff_pin_hash = "{stored}"   # set by `footfall kiosk pin`; the PIN itself is not stored\n'
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if _SECTION.match(ln)), None)
    if start is None:
        sep = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{sep}\n[kiosk]\n{line}"
    end = next((i for i in range(start + 1, len(lines)) if _ANY_SECTION.match(lines[i])), len(lines))
    body = lines[start + 1 : end]
    at = next((i for i, ln in enumerate(body) if _PIN_LINE.match(ln)), 0)
    body = [ln for ln in body if not _PIN_LINE.match(ln)]
    body.insert(min(at, len(body)), line)
    return "".join(lines[: start + 1] + body + lines[end:])


def write_keeping_mode(path: Path, text: str) -> None:
    """Replace the file atomically (temporary file + rename) with the same permissions."""
    write_private(path, text, mode=path.stat().st_mode & 0o7777 if path.exists() else PRIVATE)
