"""The camera counter on oblique views with its default settings (no --person-size): real overhead footage warped
as a ceiling camera tilted 30-60 degrees would see it (the reference crossings move with the warp), and synthetic
perspective scenes. Also `calibrate` writing a size model that `evaluate -c` then uses.

The clips are made once per session into a temporary folder; nothing is written into the repository except the
calibration still, kept as a test artifact.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

from footfall.counter.camera.cli import calibrate, evaluate
from footfall.counter.camera.size_model import SizeModel
from footfall.counter.config import load_counter_config
from tests.camera_footage import BUS, require_bus
from tests.conftest import ARTIFACTS

sys.path.insert(0, str(Path(__file__).resolve().parent))

from camera_synth import (  # noqa: E402
    crossings,
    oblique_homography,
    perspective_scene,
    render_perspective,
    warp_clip,
    warp_point,
)

BUS_LINE = (0, 120, 319, 120)

# (tilt from straight down, turn about the optical axis): 30-60 degree mounts, two of them not square to the door.
WARPS = [(30, 0), (45, 0), (60, 0), (45, 15), (60, -12)]
SCENES = [(45, 0), (60, 10)]


def warped_line(hom, line=BUS_LINE) -> str:
    x1, y1, x2, y2 = line
    return ",".join(f"{v:.1f}" for v in (*warp_point(hom, x1, y1), *warp_point(hom, x2, y2)))


@pytest.fixture(scope="session")
def oblique_clips(tmp_path_factory) -> dict[str, tuple[Path, str, Path]]:
    """name -> (clip, line, reference CSV) for every warped version of bus.avi and every synthetic scene."""
    require_bus()
    folder = tmp_path_factory.mktemp("oblique")
    clips = {}
    for tilt, yaw in WARPS:
        hom = oblique_homography(tilt, yaw)
        path = folder / f"bus_tilt{tilt}_turn{yaw}.avi"
        assert warp_clip(BUS / "bus.avi", path, hom) > 900
        # The warp keeps frame numbers and the order along the line's normal: the reference holds as it is.
        clips[path.stem] = (path, warped_line(hom), BUS / "bus_crossings.csv")
    for tilt, yaw in SCENES:
        hom = oblique_homography(tilt, yaw)
        walkers, n = perspective_scene(seed=tilt)
        path = folder / f"scene_tilt{tilt}_turn{yaw}.avi"
        out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (320, 240))
        for frame in render_perspective(walkers, n, hom, seed=tilt):
            out.write(frame)
        out.release()
        truth = path.with_suffix(".csv")
        rows = crossings(walkers[:-1], n)  # the last walker is the U-turn: no crossing
        truth.write_text("frame,direction\n" + "".join(f"{f},{d}\n" for f, d in rows))
        clips[path.stem] = (path, warped_line(hom), truth)
    return clips


def run_evaluate(args) -> tuple[dict[str, tuple[float, float, float]], str]:
    result = CliRunner().invoke(evaluate, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    scores = {}
    for row in result.stderr.splitlines():
        if ": precision=" in row:
            direction, rest = row.split(": ", 1)
            fields = dict(part.split("=") for part in rest.split()[:3])
            scores[direction] = (float(fields["precision"]), float(fields["recall"]), float(fields["f1"]))
    return scores, result.stderr


NAMES = [f"bus_tilt{t}_turn{y}" for t, y in WARPS] + [f"scene_tilt{t}_turn{y}" for t, y in SCENES]


@pytest.mark.parametrize("name", NAMES)
def test_default_settings_count_oblique_views(oblique_clips, name):
    clip, line, truth = oblique_clips[name]
    scores, log = run_evaluate([clip, "--line", line, "--truth", truth])
    assert set(scores) == {"up", "down"}
    for direction, (p, r, f1) in scores.items():
        assert f1 >= 0.9, f"{name} {direction}: precision {p:.2f} recall {r:.2f} f1 {f1:.2f}"
    assert "person size: ok" in log  # it learned the size and says it is sure


def test_u_turn_in_perspective_counts_nothing(oblique_clips):
    clip, line, _ = oblique_clips["scene_tilt60_turn10"]
    walkers, n = perspective_scene(seed=60)
    uturn_start = walkers[-1].keys[0][0]
    result = CliRunner().invoke(evaluate, [str(clip), "--line", line])
    late = [row for row in result.stdout.splitlines()[1:] if int(row.split(",")[0]) >= uturn_start]
    assert late == []


def test_calibrate_writes_a_size_model_that_evaluate_uses(oblique_clips, tmp_path):
    clip, line, truth = oblique_clips["bus_tilt45_turn0"]
    config = tmp_path / "counter.toml"
    config.write_text(
        '# door camera\n[device]\nid = "door-1"\nsite = "dongsi"\nsensor = "camera"\n\n'
        '[camera]\nsource = "picamera"\nline = [0, 0, 10, 0]  # placeholder\n\n[mqtt]\nhost = "127.0.0.1"\nport = 1883\n'
    )
    still = tmp_path / "calibration.png"
    result = CliRunner().invoke(
        calibrate, [str(clip), "--line", line, "--in-side", "down", "-c", str(config), "--out", str(still)]
    )
    assert result.exit_code == 0, result.output
    assert "person size ok" in result.output and "wrote [camera] size_model" in result.output
    text = config.read_text()
    assert (
        text.startswith("# door camera\n") and '[mqtt]\nhost = "127.0.0.1"\nport = 1883' in text
    )  # the rest is untouched
    camera = load_counter_config(config).camera
    model = SizeModel.from_config(camera.size_model)
    assert camera.line == [float(v) for v in line.split(",")] and camera.in_direction == "down"
    assert 30 < model.at(160, 100) < 110  # a person at the line of this clip is 50-80 px across
    image = cv2.imread(str(still))
    assert image.shape == (240, 320, 3)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(still, ARTIFACTS / "camera-calibration.png")

    scores, log = run_evaluate([clip, "--line", line, "--truth", truth, "-c", config])
    assert f"person size: calibrated in {config}" in log
    assert scores["down"][2] >= 0.9 and scores["up"][2] >= 0.9, scores  # the target, per direction


def test_calibrate_says_when_it_is_unsure_and_writes_nothing(tmp_path):
    # bus.avi is a full-frame overhead view: people are rarely wholly in view, too few to be sure of a size.
    require_bus()
    config = tmp_path / "counter.toml"
    still = tmp_path / "still.png"
    result = CliRunner().invoke(
        calibrate,
        [str(BUS / "bus.avi"), "--line", "0,120,319,120", "-c", str(config), "--out", str(still)],
    )
    assert result.exit_code == 1
    assert "not sure of the person size" in result.output and "nothing written" in result.output
    assert not config.exists()
    assert still.exists()  # the still shows the installer what it saw, UNSURE written on it


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--out", "x.gif"], "--out"),
        (["--in-side", "L->R"], "--in-side"),
        (["--line", "1,2,3"], "--line"),
    ],
)
def test_calibrate_bad_arguments_are_usage_errors(tmp_path, args, fragment):
    base = {"--line": "0,120,319,120", "--out": str(tmp_path / "s.png")}
    for k, v in zip(args[::2], args[1::2], strict=True):
        base[k] = v
    argv = [str(BUS / "bus.avi"), "-c", str(tmp_path / "c.toml")] + [x for kv in base.items() for x in kv]
    result = CliRunner().invoke(calibrate, argv)
    assert result.exit_code == 2 and fragment in result.output
    assert not (tmp_path / "c.toml").exists()


def test_evaluate_config_without_a_model_is_a_usage_error(tmp_path):
    config = tmp_path / "counter.toml"
    config.write_text('[camera]\nsource = "picamera"\n')
    result = CliRunner().invoke(
        evaluate, [str(BUS / "bus.avi"), "--line", "0,120,319,120", "-c", str(config)]
    )
    assert result.exit_code == 2 and "size_model" in result.output
    config.write_text('[camera]\nsize_model = { a = "x" }\n')
    result = CliRunner().invoke(
        evaluate, [str(BUS / "bus.avi"), "--line", "0,120,319,120", "-c", str(config)]
    )
    assert result.exit_code == 2 and "camera.size_model" in result.output


def test_calibrated_config_round_trips_through_toml(tmp_path):
    from footfall.counter.camera.calibrate import write_config

    model = SizeModel.bounded(20.0, 0.25, -0.01, (320, 240), depth=0.8)
    path = write_config(tmp_path / "new.toml", model)
    data = tomllib.loads(path.read_text())
    assert SizeModel.from_config(data["camera"]["size_model"]).at(100, 200) == pytest.approx(
        model.at(100, 200), rel=1e-3
    )
