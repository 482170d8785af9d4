"""Benchmark the camera counting pipeline at 320x240 on one thread; prints `name: value` lines.

Frames are decoded and resized into memory first, so decoding is not measured. Uses the shared bus-overhead clip
when present (../shared relative to the project root), synthetic frames otherwise. A bare MOG2 pass over the same
frames runs in the same process as a baseline, since the machine is shared and noisy: compare `ratio`.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CLIP = ROOT.parent / "shared" / "footage" / "bus-overhead" / "bus.avi"
SIZE = (320, 240)
LINE = (0, 120, 319, 120)


def load_frames() -> tuple[str, list[np.ndarray]]:
    frames = []
    if CLIP.is_file():
        cap = cv2.VideoCapture(str(CLIP))
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA))
        cap.release()
    if frames:
        return "bus.avi", frames
    sys.path.insert(0, str(ROOT / "tests"))
    from camera_synth import render, walk

    walkers = [walk(160, -60, 160, 300, 20 + 60 * k, colour=(200, 200, 220)) for k in range(6)]
    return "synthetic", render(walkers, 420)


def time_pipeline(frames: list[np.ndarray], passes: int) -> tuple[float, int]:
    from footfall.counter.camera.pipeline import CameraCounter

    crossings = 0
    start = time.perf_counter()
    for _ in range(passes):
        counter = CameraCounter(LINE, frame_size=SIZE, process_width=SIZE[0])
        for i, frame in enumerate(frames):
            crossings += len(counter.process(frame, i, i / 15.0))
    return passes * len(frames) / (time.perf_counter() - start), crossings


def time_mog2(frames: list[np.ndarray], passes: int) -> float:
    start = time.perf_counter()
    for _ in range(passes):
        mog = cv2.createBackgroundSubtractorMOG2(history=450, varThreshold=16, detectShadows=True)
        for frame in frames:
            mog.apply(frame)
    return passes * len(frames) / (time.perf_counter() - start)


def main() -> None:
    cv2.setNumThreads(1)
    source, frames = load_frames()
    passes = max(1, 2000 // len(frames))
    time_pipeline(frames[:50], 1)  # warm up imports and allocations
    # Interleave the two measurements so that a burst of load on the shared machine hits both.
    fps_runs, mog_runs = [], []
    crossings = 0
    for _ in range(2):
        fps, crossings = time_pipeline(frames, passes)
        fps_runs.append(fps)
        mog_runs.append(time_mog2(frames, passes))
    fps, mog = max(fps_runs), max(mog_runs)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"source: {source}")
    print(f"frames: {len(frames) * passes}")
    print(f"resolution: {SIZE[0]}x{SIZE[1]}")
    print(f"threads: {cv2.getNumThreads()}")
    print(f"crossings_per_pass: {crossings // passes}")
    print(f"fps: {fps:.0f}")
    print(f"mog2_only_fps: {mog:.0f}")
    print(f"ratio: {fps / mog:.2f}")
    print(f"peak_rss_mb: {peak_kb / 1024:.1f}")


if __name__ == "__main__":
    main()
