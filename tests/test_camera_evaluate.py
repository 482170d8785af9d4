"""Crossing CSV parsing, matching and metrics, and the evaluate / snapshot commands."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from footfall.counter.camera.cli import evaluate, snapshot
from footfall.counter.camera.evaluate import (
    Crossing,
    CrossingFileError,
    format_crossings,
    match,
    parse_crossings,
    score,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))

from camera_synth import render, walk  # noqa: E402

REFERENCE = """# a comment
# frame = moment on the line
frame,direction,note
10,up,
40,down,"striped, two blobs"
80,up
# trailing comment
"""


def test_parse_reference():
    rows = parse_crossings(REFERENCE)
    assert rows == [Crossing(10, "up"), Crossing(40, "down", "striped, two blobs"), Crossing(80, "up")]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("frame,direction\nx,up\n", "not an integer"),
        ("frame,direction\n3,left\n", "not one of"),
        ("5\n", "expected"),
    ],
)
def test_parse_errors_name_the_line(text, fragment):
    with pytest.raises(CrossingFileError, match=fragment) as info:
        parse_crossings(text, source="ref.csv")
    assert "ref.csv:2" in str(info.value) or "ref.csv:1" in str(info.value)


def test_match_within_tolerance_same_direction_once():
    truth = [Crossing(100, "up"), Crossing(105, "up"), Crossing(200, "down")]
    detected = [Crossing(103, "up"), Crossing(111, "up"), Crossing(200, "up"), Crossing(230, "down")]
    pairs = match(detected, truth)
    assert sorted((d.frame, r.frame) for d, r in pairs) == [(103, 100), (111, 105)]


def test_scores():
    truth = [Crossing(100, "up"), Crossing(200, "up"), Crossing(300, "down")]
    detected = [Crossing(101, "up"), Crossing(305, "down"), Crossing(400, "down")]
    up, down = score(detected, truth)
    assert (up.direction, up.precision, up.recall, up.count_error) == ("up", 1.0, 0.5, -1)
    assert up.f1 == pytest.approx(2 / 3)
    assert (down.precision, down.recall, down.count_error) == (0.5, 1.0, 1)


def test_format_crossings_has_header():
    assert format_crossings([Crossing(3, "L->R")]) == "frame,direction\n3,L->R\n"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    import cv2

    walkers = [walk(160, -60, 160, 300, 30), walk(200, 300, 200, -60, 90)]
    frames = render(walkers, 160)
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (320, 240))
    for f in frames:
        writer.write(f)
    writer.release()
    truth = path.with_name("truth.csv")
    truth.write_text("# synthetic\nframe,direction,note\n60,down,\n120,up,\n")
    return path, truth


def test_evaluate_command(clip):
    path, truth = clip
    result = CliRunner().invoke(evaluate, [str(path), "--line", "0,120,319,120", "--truth", str(truth)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "frame,direction"
    assert [row.split(",")[1] for row in lines[1:]] == ["down", "up"]
    assert "up: precision=1.000 recall=1.000 f1=1.000 count_error=+0" in result.stderr
    assert "down: precision=1.000" in result.stderr


@pytest.mark.parametrize(
    "args, option",
    [
        (["--line", "0,120,319"], "--line"),
        (["--line", "0,1,0,1"], "--line"),
        (["--line", "0,120,319,120", "--person-size", "-3"], "--person-size"),
        (["--line", "0,120,319,120", "--process-width", "2"], "--process-width"),
        (["--line", "0,120,319,120", "--truth", "/nonexistent.csv"], "--truth"),
    ],
)
def test_evaluate_bad_arguments_are_usage_errors(clip, args, option):
    result = CliRunner().invoke(evaluate, [str(clip[0]), *args])
    assert result.exit_code == 2
    assert option in result.output
    assert "Traceback" not in result.output


def test_evaluate_malformed_truth_is_a_usage_error(clip, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("frame,direction\n12,sideways\n")
    result = CliRunner().invoke(evaluate, [str(clip[0]), "--line", "0,120,319,120", "--truth", str(bad)])
    assert result.exit_code == 2 and "--truth" in result.output and "sideways" in result.output


@pytest.mark.parametrize("content", [None, b"", b"not a video at all" * 100])
def test_evaluate_unreadable_video_exits_1(tmp_path, content):
    path = tmp_path / "broken.avi"
    if content is not None:
        path.write_bytes(content)
    result = CliRunner().invoke(evaluate, [str(path), "--line", "0,120,319,120"])
    assert result.exit_code == 1
    assert "cannot read video" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("suffix", [".png", ".avi"])
def test_snapshot_writes_only_the_requested_file(clip, tmp_path, suffix):
    import cv2

    out = tmp_path / f"check{suffix}"
    result = CliRunner().invoke(
        snapshot,
        [str(clip[0]), "--line", "0,120,319,120", "--out", str(out), "--frames", "70", "--in-side", "down"],
    )
    assert result.exit_code == 0, result.output
    assert "in 1" in result.output
    assert [p.name for p in tmp_path.iterdir()] == [out.name]
    if suffix == ".png":
        assert cv2.imread(str(out)).shape == (240, 320, 3)
    else:
        cap = cv2.VideoCapture(str(out))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 70


@pytest.mark.parametrize(
    "args, option",
    [
        (["--out", "x.gif"], "--out"),
        (["--out", "x.png", "--in-side", "L->R"], "--in-side"),
        (["--out", "x.png", "--mask", "1,2;3,4"], "--mask"),
    ],
)
def test_snapshot_bad_arguments(clip, args, option):
    result = CliRunner().invoke(snapshot, [str(clip[0]), "--line", "0,120,319,120", *args])
    assert result.exit_code == 2 and option in result.output
