"""The check-in request, validated before anything is stored. Pure: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from footfall import member_code
from footfall.errors import ValidationError
from footfall.messages import PURPOSES

MAX_PEOPLE = 50
MEMBER_PREFIXES = ("footfall-member:", "member:")
SCHEDULED = ("class", "activity")


def normalize_member(text: Any) -> str:
    """A member code from the keypad or a QR code (which may carry a `footfall-member:` prefix): 9 digits with a
    check digit (footfall/member_code.py), so a phone number, ID-card number or name is refused."""
    if not isinstance(text, str):
        raise ValidationError("must be a string", "member")
    code = text.strip()
    for prefix in MEMBER_PREFIXES:
        if code.lower().startswith(prefix):
            code = code[len(prefix) :].strip()
    return member_code.validate(code)


def _count(body: dict, key: str, default: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("must be an integer", key)
    if not 0 <= value <= MAX_PEOPLE:
        raise ValidationError(f"must be between 0 and {MAX_PEOPLE}", key)
    return value


@dataclass(frozen=True)
class CheckinRequest:
    purpose: str
    adults: int
    children: int
    activity: str | None = None
    member: str | None = None
    room: str | None = None

    def fields(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def parse_checkin(body: Any, items: list[dict[str, Any]]) -> CheckinRequest:
    """Validate a POSTed check-in against today's schedule `items`; raise ValidationError naming the field."""
    if not isinstance(body, dict):
        raise ValidationError("must be a JSON object", "body")
    purpose = body.get("purpose")
    if purpose not in PURPOSES:
        raise ValidationError(f"must be one of {', '.join(PURPOSES)}", "purpose")
    adults, children = _count(body, "adults", 1), _count(body, "children", 0)
    if adults + children < 1:
        raise ValidationError("a check-in needs at least one person", "adults")
    activity = body.get("activity")
    room = None
    if activity is not None:
        if purpose not in SCHEDULED:
            raise ValidationError("only a class or an activity has one", "activity")
        item = next((i for i in items if i["id"] == activity), None)
        if item is None:
            raise ValidationError("not in today's schedule", "activity")
        room = item["room"]
    member = body.get("member")
    if member is not None:
        member = normalize_member(member)
    return CheckinRequest(purpose, adults, children, activity, member, room)
