"""``footfall counter calibrate``: watch a source, learn the person size over the frame, write it into counter.toml.

The counter learns the same way by itself (size_model.py); calibrating does it once, on purpose, while the installer
walks through the door, so that the counter starts sure of itself and the installer can check the result on the
annotated still it saves (the only image this writes). counter.toml is edited in place: only the ``[camera]``
keys ``size_model`` (and ``line`` / ``in_direction`` when given) change; comments and other lines stay.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from footfall.counter.camera.pipeline import CameraCounter
from footfall.counter.camera.size_model import OK, SizeModel
from footfall.counter.camera.sources import FrameSource

logger = logging.getLogger(__name__)


class CalibrationError(ValueError):
    """Calibration could not produce a trustworthy model, or counter.toml cannot be edited."""


@dataclass
class Calibration:
    model: SizeModel | None
    status: dict
    frames: int
    counts: dict[str, int]
    last_frame: object
    counter: CameraCounter


def watch(
    source: FrameSource, counter: CameraCounter, seconds: float | None, frames: int | None
) -> Calibration:
    """Run ``counter`` over ``source`` for ``seconds`` of media time or ``frames`` frames (or to the end)."""
    n = 0
    last = None
    start_t = None
    wall = time.monotonic()
    for frame in source:
        counter.process(frame.image, frame.index, frame.t)
        last = frame.image
        n += 1
        start_t = frame.t if start_t is None else start_t
        if frames is not None and n >= frames:
            break
        if seconds is not None and (frame.t - start_t >= seconds or time.monotonic() - wall >= seconds * 2):
            break
    if last is None:
        raise CalibrationError("the source gave no frames")
    status = counter.size_status()
    model = counter.size_model if status["state"] == OK else None
    return Calibration(model, status, n, dict(counter.counts), last, counter)


def toml_inline(model: SizeModel) -> str:
    return "{ " + ", ".join(f"{k} = {v!r}" for k, v in model.to_config().items()) + " }"


_SECTION = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")


def set_camera_keys(text: str, values: dict[str, str]) -> str:
    """Set ``[camera]`` keys (values as TOML literals) in counter.toml text, replacing existing one-line
    assignments in place and adding missing keys at the end of the section (or a new section at the end)."""
    lines = text.splitlines()
    start = end = None
    for i, line in enumerate(lines):
        m = _SECTION.match(line)
        if m:
            if start is not None and end is None:
                end = i
            if m.group(1).strip() == "camera":
                start = i
    if start is None:
        out = lines + ([""] if lines and lines[-1].strip() else []) + ["[camera]"]
        out += [f"{k} = {v}" for k, v in values.items()]
        return "\n".join(out) + "\n"
    end = len(lines) if end is None else end
    pending = dict(values)
    for i in range(start + 1, end):
        m = re.match(r"^\s*([A-Za-z0-9_]+)\s*=", lines[i])
        if m and m.group(1) in pending:
            lines[i] = f"{m.group(1)} = {pending.pop(m.group(1))}"
    insert_at = end
    while insert_at > start + 1 and not lines[insert_at - 1].strip():
        insert_at -= 1
    lines[insert_at:insert_at] = [f"{k} = {v}" for k, v in pending.items()]
    return "\n".join(lines) + "\n"


def write_config(path: str | Path, model: SizeModel, line=None, in_side: str | None = None) -> Path:
    """Write the size model (and the line and in side, when given) into the ``[camera]`` table of ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8") if p.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"cannot read {p}: {exc}") from None
    values = {"size_model": toml_inline(model)}
    if line is not None:
        values["line"] = "[" + ", ".join(f"{float(v):g}" for v in line) + "]"
    if in_side is not None:
        values["in_direction"] = f'"{in_side}"'
    new = set_camera_keys(text, values)
    import tomllib

    try:
        tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:
        raise CalibrationError(f"{p} is not valid TOML, left unchanged: {exc}") from None
    try:
        p.write_text(new, encoding="utf-8")
    except OSError as exc:
        raise CalibrationError(f"cannot write {p}: {exc}") from None
    return p
