"""Synthetic overhead-camera clips for the camera counter tests: people as textured ellipses moving over a
textured, noisy floor, with known crossing frames.

A :class:`Walker` follows straight segments between keyframes ``(frame, x, y)``; it is visible from its first
keyframe to its last, and may start or end outside the frame (entering or leaving the view).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

W, H = 320, 240
PERSON = 80  # diameter in pixels, about 20% of the frame diagonal


@dataclass
class Walker:
    keys: list[tuple[int, float, float]]
    colour: tuple[int, int, int] = (200, 200, 220)
    size: float = PERSON
    stripes: bool = False

    def position(self, frame: int) -> tuple[float, float] | None:
        if frame < self.keys[0][0] or frame > self.keys[-1][0]:
            return None
        for (f0, x0, y0), (f1, x1, y1) in zip(self.keys, self.keys[1:], strict=False):
            if f0 <= frame <= f1:
                a = 0.0 if f1 == f0 else (frame - f0) / (f1 - f0)
                return x0 + (x1 - x0) * a, y0 + (y1 - y0) * a
        return self.keys[-1][1], self.keys[-1][2]


def walk(x0, y0, x1, y1, start: int, speed: float = 6.0, **kw) -> Walker:
    """A walker going straight from (x0, y0) to (x1, y1) at ``speed`` pixels per frame from frame ``start``."""
    frames = max(1, round(np.hypot(x1 - x0, y1 - y0) / speed))
    return Walker([(start, x0, y0), (start + frames, x1, y1)], **kw)


def floor(seed: int = 0, w: int = W, h: int = H) -> np.ndarray:
    """A tiled, speckled floor: texture that a detector must not mistake for people."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, (h // 8 + 1, w // 8 + 1)).astype(np.float32)
    base = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)[:h, :w]
    img = np.empty((h, w, 3), np.float32)
    img[:] = (70, 60, 110)
    img += base[..., None] * 12
    img[::24, :] -= 25
    img[:, ::24] -= 25
    img += rng.normal(0, 6, (h, w, 1))
    img[:, : w // 3] *= 0.45  # a dark side, like a shaded part of a doorway
    return np.clip(img, 0, 255)


def render(
    walkers: list[Walker],
    n_frames: int,
    seed: int = 0,
    noise: float = 3.0,
    light: list[tuple[int, float]] | None = None,
) -> list[np.ndarray]:
    """Frames as BGR uint8. ``light``: (from_frame, gain) steps multiplying the scene's brightness."""
    rng = np.random.default_rng(seed + 1)
    bg = floor(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    frames = []
    for i in range(n_frames):
        img = bg.copy()
        for wk in walkers:
            pos = wk.position(i)
            if pos is None:
                continue
            cx, cy = pos
            rx, ry = wk.size / 2, wk.size * 0.42
            inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
            colour = np.array(wk.colour, np.float32)
            img[inside] = colour
            if wk.stripes:
                band = inside & (((yy - cy) // 8) % 2 == 0)
                img[band] = (40, 40, 40)
            head = ((xx - cx) / (rx * 0.4)) ** 2 + ((yy - cy) / (ry * 0.45)) ** 2 <= 1.0
            img[head] = (30, 35, 45)
        gain = 1.0
        for start, g in light or []:
            if i >= start:
                gain = g
        img = img * gain + rng.normal(0, noise, img.shape)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def crossings(walkers: list[Walker], n_frames: int, line_y: float = H / 2) -> list[tuple[int, str]]:
    """Reference crossings of a horizontal line: (frame on the line, 'up'/'down'), in frame order."""
    out = []
    for wk in walkers:
        prev = None
        for i in range(n_frames):
            pos = wk.position(i)
            if pos is None:
                prev = None
                continue
            if prev is not None and (prev[1] < line_y <= pos[1] or pos[1] <= line_y < prev[1]):
                out.append((i, "down" if pos[1] > prev[1] else "up"))
            prev = pos
    return sorted(out)


def run_counter(frames: list[np.ndarray], line=(0, H / 2, W - 1, H / 2), fps: float = 15.0, **kw):
    """Run a CameraCounter over ``frames``; returns the list of CameraCrossing."""
    from footfall.counter.camera.pipeline import CameraCounter

    counter = CameraCounter(line, frame_size=(frames[0].shape[1], frames[0].shape[0]), **kw)
    found = []
    for i, f in enumerate(frames):
        found.extend(counter.process(f, i, i / fps))
    found.extend(counter.finish())  # the tracker runs behind while it learns the size
    return found, counter


# -- oblique views of real overhead footage ------------------------------------------------------------------


def oblique_homography(
    tilt_deg: float, yaw_deg: float = 0.0, size: tuple[int, int] = (W, H), distance: float = 0.8
) -> np.ndarray:
    """The homography that shows an overhead frame (taken as the floor) from a camera tilted ``tilt_deg`` from
    straight down, standing ``distance`` frame widths from the floor's centre on the bottom side, then turned
    ``yaw_deg`` about its optical axis. The result is scaled to fill ``size``."""
    w, h = size
    t, d = np.radians(tilt_deg), distance * w
    centre = np.array([0.0, d * np.sin(t), d * np.cos(t)])
    z = -centre / np.linalg.norm(centre)
    x = np.array([1.0, 0.0, 0.0])
    y = np.cross(x, z)
    rot = np.array([x, y, z])
    a = np.radians(yaw_deg)
    roll = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rot = roll @ rot
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float64)
    projected = []
    for cx, cy in corners:
        p = rot @ (np.array([cx - w / 2, cy - h / 2, 0.0]) - centre)
        projected.append((p[0] / p[2], p[1] / p[2]))
    projected = np.array(projected)
    lo, hi = projected.min(axis=0), projected.max(axis=0)
    k = min((w - 1) / (hi[0] - lo[0]), (h - 1) / (hi[1] - lo[1]))
    fitted = (projected - lo) * k + ((w - 1, h - 1) - (hi - lo) * k) / 2
    return cv2.getPerspectiveTransform(corners.astype(np.float32), fitted.astype(np.float32))


def warp_point(hom: np.ndarray, x: float, y: float) -> tuple[float, float]:
    p = hom @ np.array([x, y, 1.0])
    return float(p[0] / p[2]), float(p[1] / p[2])


def warp_clip(src: str, dst: str, hom: np.ndarray, size: tuple[int, int] = (W, H)) -> int:
    """Write ``src`` warped by ``hom`` to ``dst`` (MJPG AVI); returns the number of frames."""
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 15.0
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.write(cv2.warpPerspective(frame, hom, size, flags=cv2.INTER_LINEAR))
        n += 1
    cap.release()
    out.release()
    return n


# -- synthetic perspective scenes ----------------------------------------------------------------------------


def render_perspective(
    walkers: list[Walker], n_frames: int, hom: np.ndarray, seed: int = 0, noise: float = 3.0
) -> list[np.ndarray]:
    """Like :func:`render`, but the walkers move on a floor seen through ``hom`` (see oblique_homography): each
    is drawn where its floor position lands, scaled by the local magnification, so people near the camera are
    larger and faster than far ones. Walker keyframes and sizes are in floor (overhead) pixels."""
    rng = np.random.default_rng(seed + 1)
    bg = cv2.warpPerspective(floor(seed), hom, (W, H), flags=cv2.INTER_LINEAR)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    frames = []
    for i in range(n_frames):
        img = bg.copy()
        for wk in walkers:
            pos = wk.position(i)
            if pos is None:
                continue
            cx, cy = warp_point(hom, *pos)
            ex = np.subtract(warp_point(hom, pos[0] + 1, pos[1]), (cx, cy))
            ey = np.subtract(warp_point(hom, pos[0], pos[1] + 1), (cx, cy))
            rx = wk.size / 2 * float(np.hypot(*ex))
            ry = wk.size * 0.42 * float(np.hypot(*ey))
            inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
            img[inside] = np.array(wk.colour, np.float32)
            head = ((xx - cx) / (rx * 0.4)) ** 2 + ((yy - cy) / (ry * 0.45)) ** 2 <= 1.0
            img[head] = (30, 35, 45)
        img = img + rng.normal(0, noise, img.shape)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def perspective_scene(seed: int = 0) -> tuple[list[Walker], int]:
    """A door scene on the floor: people one at a time, side by side and passing each other, both ways, and last a
    U-turn whose centre goes a little past the line and back (it must count nothing, so leave it out of the
    reference: ``crossings(walkers[:-1], n)``); returns (walkers, number of frames)."""
    rng = np.random.default_rng(seed)
    colours = [(200, 200, 220), (90, 160, 220), (60, 200, 120), (220, 120, 80), (150, 150, 150)]
    walkers: list[Walker] = []
    start = 30
    for k in range(12):
        c = colours[k % len(colours)]
        x = float(rng.uniform(90, 230))
        if k % 4 == 3:  # two side by side, the other way
            walkers.append(walk(x - 50, 300, x - 45, -60, start, colour=c))
            walkers.append(walk(x + 50, 300, x + 45, -60, start + 2, colour=colours[(k + 2) % 5]))
        elif k % 4 == 1:  # two passing each other
            walkers.append(walk(x - 40, -60, x - 30, 300, start, colour=c))
            walkers.append(walk(x + 40, 300, x + 30, -60, start, colour=colours[(k + 1) % 5]))
        else:
            y0, y1 = (-60, 300) if k % 2 == 0 else (300, -60)
            walkers.append(walk(x, y0, x + float(rng.uniform(-30, 30)), y1, start, colour=c))
        start += 45
    walkers.append(Walker([(start, 160, 300), (start + 30, 160, 112), (start + 60, 160, 300)]))
    return walkers, start + 70
