"""Member codes: issued by the center, shaped so that no phone number, ID-card number or name is ever a valid one.

A member code is exactly 9 digits: an 8-digit serial (10000000-99999999, no leading zero, so a spreadsheet cannot
drop it) followed by one Damm check digit (H. M. Damm, 2004; the table below is the usual one, as on Wikipedia and
in python-stdnum). Why this shape:

- mobile numbers have 11 digits (13 with 86, 15 with 0086, and `+` is not a digit), landlines 7-8 digits locally
  or 10-12 with the area code, ID-card numbers 15 or 18 (the last may be X): none has 9 digits;
- a name has letters: a code has digits only (the kiosk's keypad is numeric);
- the Damm digit catches every single mistyped digit and every swap of two neighbouring digits (ISO 7064 MOD 11,10
  and Luhn miss some swaps, e.g. 09 <-> 90), so a typo is refused rather than counted for another member.

Pure: no I/O. Enforced by the kiosk (before a check-in is stored) and by ingest (a bad `member` is a dead letter).
"""

from __future__ import annotations

import re
import secrets

from footfall.errors import ValidationError

LENGTH = 9
SERIAL_MIN, SERIAL_MAX = 10_000_000, 99_999_999
_CODE = re.compile(r"^[1-9][0-9]{8}$")
# What people type instead of a member code, each named in the refusal (the length alone already rules them out).
_PHONE = re.compile(r"^(\+|00)?(86)?1[3-9][0-9]{9}$|^(\+|00)?(86)?0?[1-9][0-9]{1,2}-?[0-9]{7,8}$")
_ID_CARD = re.compile(r"^[0-9]{15}$|^[0-9]{17}[0-9Xx]$")


# A weakly totally anti-symmetric quasigroup of order 10: what makes every neighbour swap change the result.
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def check_digit(serial: str) -> str:
    """The Damm check digit of a string of digits (a valid code's digits, check digit included, give 0)."""
    interim = 0
    for char in serial:
        interim = _DAMM[interim][int(char)]
    return str(interim)


def make(serial: int) -> str:
    """The member code for an 8-digit serial number."""
    if not SERIAL_MIN <= serial <= SERIAL_MAX:
        raise ValueError(f"a serial is {SERIAL_MIN} to {SERIAL_MAX}, got {serial}")
    return f"{serial}{check_digit(str(serial))}"


def random_code() -> str:
    """A new code with a random serial (not guessable from the previous one); the center's register must still
    check that it has not been issued before."""
    return make(SERIAL_MIN + secrets.randbelow(SERIAL_MAX - SERIAL_MIN + 1))


def problem(code: object) -> str | None:
    """Why `code` is not a valid member code, or None when it is."""
    if not isinstance(code, str):
        return "must be a string"
    if _CODE.match(code):
        return None if check_digit(code[:-1]) == code[-1] else "check digit does not match (mistyped?)"
    if _PHONE.match(code):
        return "looks like a phone number, not a member code"
    if _ID_CARD.match(code):
        return "looks like an ID-card number, not a member code"
    if not code.isascii() or not code.isdigit():
        return f"must be {LENGTH} digits (a member code, never a name)"
    return f"must be {LENGTH} digits, not starting with 0"


def validate(code: object, field: str = "member") -> str:
    """Return `code` if it is a valid member code; raise ValidationError naming `field` otherwise."""
    reason = problem(code)
    if reason is not None:
        raise ValidationError(reason, field)
    return code  # type: ignore[return-value]
