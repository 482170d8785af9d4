"""Benchmark the camera counter: speed at 320x240 on one thread, and F1 per direction on every test clip.

Prints `name: value` lines. Speed: frames are decoded and resized into memory first, so decoding is not measured.
The machine is shared and noisy, so each rate comes with an in-run baseline and a ratio, the runs interleaved so
that a burst of load hits both sides:
- `fps` is the full pipeline with its default, learned person size (target >= 300); `fixed_size_fps` the same
  pipeline with the learner off (it keeps its starting size): `learner_ratio` is what learning costs;
- `mog2_only_fps` is the pipeline's own background subtractor alone (same MOG2, three Gaussians, same history):
  `ratio` is what tracking, cleaning and learning cost on top of segmentation.
Accuracy: `evaluate` with default settings on bus.avi, on its warped oblique versions and on the synthetic
perspective scenes, the same clips tests/test_camera_oblique.py makes (`f1_<clip>_<direction>`).

Needs the shared footage (../shared/footage/bus-overhead beside the project root).
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
BUS = ROOT.parent / "shared" / "footage" / "bus-overhead"
SIZE = (320, 240)
LINE = (0, 120, 319, 120)
FPS = 15.0


def load_frames() -> list[np.ndarray]:
    frames = []
    cap = cv2.VideoCapture(str(BUS / "bus.avi"))
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA))
    cap.release()
    return frames


def time_pipeline(frames: list[np.ndarray], passes: int, learn: bool = True) -> tuple[float, int]:
    from footfall.counter.camera.pipeline import CameraCounter, PipelineConfig

    config = PipelineConfig(auto_person_size=learn)
    crossings = 0
    start = time.perf_counter()
    for _ in range(passes):
        counter = CameraCounter(LINE, frame_size=SIZE, process_width=SIZE[0], config=config)
        for i, frame in enumerate(frames):
            crossings += len(counter.process(frame, i, i / FPS))
        crossings += len(counter.finish())
    return passes * len(frames) / (time.perf_counter() - start), crossings // passes


def time_mog2(frames: list[np.ndarray], passes: int) -> float:
    from footfall.counter.camera.pipeline import PipelineConfig, background_subtractor

    config = PipelineConfig()
    start = time.perf_counter()
    for _ in range(passes):
        mog = background_subtractor(int(config.history_s * FPS), config.var_threshold)
        for frame in frames:
            mog.apply(frame)
    return passes * len(frames) / (time.perf_counter() - start)


def speed(frames: list[np.ndarray]) -> dict[str, str]:
    passes = max(1, 2000 // len(frames))
    time_pipeline(frames[:50], 1)  # warm up imports and allocations
    runs: dict[str, list[float]] = {"fps": [], "fixed": [], "mog": []}
    crossings = 0
    for _ in range(2):
        fps, crossings = time_pipeline(frames, passes)
        runs["fps"].append(fps)
        runs["fixed"].append(time_pipeline(frames, passes, learn=False)[0])
        runs["mog"].append(time_mog2(frames, passes))
    fps, fixed, mog = (max(runs[k]) for k in ("fps", "fixed", "mog"))
    return {
        "frames": str(len(frames) * passes),
        "resolution": f"{SIZE[0]}x{SIZE[1]}",
        "threads": str(cv2.getNumThreads()),
        "crossings_per_pass": str(crossings),
        "fps": f"{fps:.0f}",
        "fixed_size_fps": f"{fixed:.0f}",
        "learner_ratio": f"{fps / fixed:.2f}",
        "mog2_only_fps": f"{mog:.0f}",
        "ratio": f"{fps / mog:.2f}",
    }


def clips(folder: Path) -> list[tuple[str, Path, tuple, Path]]:
    """(name, clip, line, reference CSV): bus.avi and the oblique clips of tests/test_camera_oblique.py."""
    from camera_synth import crossings, oblique_homography, perspective_scene, render_perspective, warp_clip
    from test_camera_oblique import SCENES, WARPS, warped_line

    out = [("bus", BUS / "bus.avi", LINE, BUS / "bus_crossings.csv")]
    for tilt, yaw in WARPS:
        hom = oblique_homography(tilt, yaw)
        path = folder / f"bus_tilt{tilt}_turn{yaw}.avi"
        warp_clip(BUS / "bus.avi", path, hom)
        out.append((path.stem, path, _line(warped_line(hom)), BUS / "bus_crossings.csv"))
    for tilt, yaw in SCENES:
        hom = oblique_homography(tilt, yaw)
        walkers, n = perspective_scene(seed=tilt)
        path = folder / f"scene_tilt{tilt}_turn{yaw}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
        for frame in render_perspective(walkers, n, hom, seed=tilt):
            writer.write(frame)
        writer.release()
        truth = path.with_suffix(".csv")
        truth.write_text("frame,direction\n" + "".join(f"{f},{d}\n" for f, d in crossings(walkers[:-1], n)))
        out.append((path.stem, path, _line(warped_line(hom)), truth))
    return out


def _line(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def accuracy() -> dict[str, str]:
    from footfall.counter.camera.evaluate import evaluate_video, read_crossings, score

    lines = {}
    worst = 1.0
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, line, truth in clips(Path(tmp)):
            status: dict = {}
            for s in score(evaluate_video(path, line, status=status), read_crossings(truth)):
                lines[f"f1_{name}_{s.direction}"] = f"{s.f1:.2f}"
                worst = min(worst, s.f1)
            lines[f"size_{name}"] = status.get("state", "")
    lines["f1_worst"] = f"{worst:.2f}"
    return lines


def main() -> None:
    if not (BUS / "bus.avi").is_file() or not (BUS / "bus_crossings.csv").is_file():
        sys.exit(f"bench/camera.py needs the shared footage: {BUS}/bus.avi and bus_crossings.csv")
    cv2.setNumThreads(1)
    results = {"source": "bus.avi", **speed(load_frames()), **accuracy()}
    results["peak_rss_mb"] = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}"
    for key, value in results.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
