"""Counting line geometry: sides, the hysteresis band and direction names. Pure, no I/O.

A counting line is a segment between two points in frame pixels. Its *positive* side is the one toward larger y
for a line more horizontal than vertical (a crossing toward it is ``down``), and toward larger x otherwise (``L->R``).
The other side is negative (``up`` / ``R->L``).

Side names and direction names agree: ``top``/``up`` and ``left``/``R->L`` name the negative side,
``bottom``/``down`` and ``right``/``L->R`` the positive one. ``in_side`` names the side the inside of the building
is on, which is the same as naming the direction of an inward crossing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

UP, DOWN, L2R, R2L = "up", "down", "L->R", "R->L"
IN, OUT = "in", "out"

_HORIZONTAL_NAMES = {"up": -1, "top": -1, "down": 1, "bottom": 1}
_VERTICAL_NAMES = {"l->r": 1, "right": 1, "r->l": -1, "left": -1}


def parse_line(text: str) -> tuple[float, float, float, float]:
    """Parse ``x1,y1,x2,y2`` into four floats; raise ValueError with a readable reason."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 4:
        raise ValueError(f"expected four numbers x1,y1,x2,y2, got {text!r}")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"expected four numbers x1,y1,x2,y2, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"line coordinates must be finite, got {text!r}")
    x1, y1, x2, y2 = values
    if math.hypot(x2 - x1, y2 - y1) < 1e-6:
        raise ValueError("the two points of the line are the same point")
    return values  # type: ignore[return-value]


@dataclass(frozen=True)
class CountingLine:
    """A segment with a unit normal pointing to its positive side."""

    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        if self.length < 1e-6:
            raise ValueError("the two points of the line are the same point")

    @classmethod
    def from_tuple(cls, line: tuple[float, float, float, float]) -> CountingLine:
        x1, y1, x2, y2 = (float(v) for v in line)
        return cls(x1, y1, x2, y2)

    @property
    def length(self) -> float:
        return math.hypot(self.x2 - self.x1, self.y2 - self.y1)

    @property
    def midpoint(self) -> tuple[float, float]:
        return (self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2

    def foot(self, x: float, y: float) -> tuple[float, float]:
        """The point of the segment nearest to (x, y)."""
        t = min(1.0, max(0.0, self.along(x, y)))
        return self.x1 + (self.x2 - self.x1) * t, self.y1 + (self.y2 - self.y1) * t

    @property
    def horizontal(self) -> bool:
        """True when the line is more horizontal than vertical (directions are up/down)."""
        return abs(self.x2 - self.x1) >= abs(self.y2 - self.y1)

    @property
    def normal(self) -> tuple[float, float]:
        """Unit normal toward the positive side (larger y when horizontal, larger x otherwise)."""
        dx, dy = (self.x2 - self.x1) / self.length, (self.y2 - self.y1) / self.length
        nx, ny = -dy, dx
        if (self.horizontal and ny < 0) or (not self.horizontal and nx < 0):
            nx, ny = -nx, -ny
        return nx, ny

    def signed_distance(self, x: float, y: float) -> float:
        """Distance from the infinite line, positive on the positive side."""
        nx, ny = self.normal
        return (x - self.x1) * nx + (y - self.y1) * ny

    def along(self, x: float, y: float) -> float:
        """Position along the segment: 0 at the first point, 1 at the second."""
        dx, dy = self.x2 - self.x1, self.y2 - self.y1
        return ((x - self.x1) * dx + (y - self.y1) * dy) / (self.length**2)

    def within_segment(self, x: float, y: float, margin: float = 0.0) -> bool:
        """True when the point projects onto the segment, extended by ``margin`` pixels at each end."""
        t = self.along(x, y)
        m = margin / self.length
        return -m <= t <= 1.0 + m

    def scaled(self, sx: float, sy: float) -> CountingLine:
        return CountingLine(self.x1 * sx, self.y1 * sy, self.x2 * sx, self.y2 * sy)

    def direction_name(self, sign: int) -> str:
        """Geometric name of a crossing toward the side ``sign`` (+1 positive, -1 negative)."""
        if self.horizontal:
            return DOWN if sign > 0 else UP
        return L2R if sign > 0 else R2L

    def side_sign(self, name: str) -> int:
        """Sign of the side named by a side or direction name valid for this line's orientation."""
        key = str(name).strip().lower()
        table = _HORIZONTAL_NAMES if self.horizontal else _VERTICAL_NAMES
        if key not in table:
            valid = "up/down (or top/bottom)" if self.horizontal else "L->R/R->L (or right/left)"
            kind = "more horizontal than vertical" if self.horizontal else "more vertical than horizontal"
            raise ValueError(f"in side {name!r} does not fit a line {kind}; use {valid}")
        return table[key]


def default_in_sign() -> int:
    """Without an explicit in side, crossings toward the positive side (down / L->R) are ``in``."""
    return 1


class BandSide:
    """Hysteresis classification of a signed distance: -1, 0 (inside the band) or +1."""

    def __init__(self, half_width: float):
        if half_width < 0:
            raise ValueError("band half width must be >= 0")
        self.half_width = half_width

    def __call__(self, distance: float) -> int:
        if distance > self.half_width:
            return 1
        if distance < -self.half_width:
            return -1
        return 0
