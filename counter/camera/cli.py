"""Installer commands for the camera counter: ``evaluate`` a recorded clip, render a placement ``snapshot``, and
``calibrate`` the person size into counter.toml.

Plain click commands; the ``footfall counter`` group adds them. Errors in arguments are click usage errors
(exit 2, naming the option); a source that cannot be read is a one-line message and exit 1.
"""

from __future__ import annotations

import logging

import click

logger = logging.getLogger(__name__)


def _parse_line(ctx, param, value):
    if value is None:
        return None
    from footfall.counter.camera.geometry import parse_line

    try:
        return parse_line(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _parse_mask(ctx, param, value):
    if value is None:
        return None
    try:
        points = [
            tuple(float(v) for v in pair.split(",")) for pair in value.replace(" ", "").split(";") if pair
        ]
    except ValueError:
        points = []
    if len(points) < 3 or any(len(p) != 2 for p in points):
        raise click.BadParameter("expected at least three points x,y;x,y;x,y", ctx=ctx, param=param)
    return points


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    raise click.exceptions.Exit(1)


LINE_HELP = "Counting line x1,y1,x2,y2 in frame pixels."
PERSON_HELP = "Diameter of one person seen from the camera, in frame pixels (default: estimated)."
WIDTH_HELP = "Width the frames are shrunk to before processing."


def _config_size_model(path: str | None):
    """The calibrated size model in counter.toml's [camera] table, or None; bad config is a usage error."""
    if path is None:
        return None
    from footfall.config import load_toml
    from footfall.counter.camera.size_model import SizeModel
    from footfall.errors import ConfigError

    try:
        camera = load_toml(path).get("camera", {})
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="'--config'") from None
    raw = camera.get("size_model") if isinstance(camera, dict) else None
    if raw is None:
        raise click.BadParameter(
            f"{path}: [camera] has no size_model (run calibrate)", param_hint="'--config'"
        )
    try:
        return SizeModel.from_config(raw)
    except ValueError as exc:
        raise click.BadParameter(f"{path}: camera.size_model {exc}", param_hint="'--config'") from None


@click.command("evaluate")
@click.argument("video")
@click.option("--line", "line", required=True, callback=_parse_line, help=LINE_HELP)
@click.option(
    "--truth", type=click.Path(exists=True, dir_okay=False), help="Reference crossings CSV to score against."
)
@click.option("--person-size", type=click.FloatRange(min=1.0), default=None, help=PERSON_HELP)
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Use the calibrated size model of this counter.toml instead of learning one.",
)
@click.option("--process-width", type=click.IntRange(min=16), default=320, show_default=True, help=WIDTH_HELP)
def evaluate(video, line, truth, person_size, config_path, process_width):
    """Count the crossings in a recorded VIDEO and print them as CSV (frame,direction).

    With --truth, also print per-direction precision, recall, F1 and count error on standard error
    (a detection matches a reference crossing of the same direction within 10 frames). The person size is
    learned while the clip plays, as the live counter does, unless --person-size or --config gives it.
    """
    from footfall.counter.camera.evaluate import (
        CrossingFileError,
        evaluate_video,
        format_crossings,
        format_scores,
        read_crossings,
        score,
    )
    from footfall.counter.camera.sources import SourceError

    reference = None
    if truth is not None:
        try:
            reference = read_crossings(truth)
        except (CrossingFileError, UnicodeDecodeError, OSError) as exc:
            raise click.BadParameter(str(exc), param_hint="'--truth'") from None
    if person_size is not None and config_path is not None:
        raise click.UsageError("give either --person-size or --config, not both")
    model = _config_size_model(config_path)
    status: dict = {}
    try:
        detected = evaluate_video(
            video, line, person_size=person_size, process_width=process_width, size_model=model, status=status
        )
    except SourceError as exc:
        _fail(str(exc))
    click.echo(format_crossings(detected), nl=False)
    where = f"calibrated in {config_path}" if model is not None else status.get("state", "")
    click.echo(f"person size: {where}, {status.get('size_at_line', 0):.0f} px at the line", err=True)
    if reference is not None:
        click.echo(format_scores(score(detected, reference)), nl=False, err=True)


@click.command("snapshot")
@click.argument("source")
@click.option("--line", "line", required=True, callback=_parse_line, help=LINE_HELP)
@click.option("--out", "out", required=True, help="Output file: .png/.jpg for a still, .mp4/.avi for a clip.")
@click.option(
    "--frames",
    type=click.IntRange(min=1),
    default=150,
    show_default=True,
    help="Frames to run (the still shows the last one).",
)
@click.option(
    "--in-side", default=None, help="Side where 'in' is: up/down (top/bottom) or L->R/R->L (right/left)."
)
@click.option("--person-size", type=click.FloatRange(min=1.0), default=None, help=PERSON_HELP)
@click.option("--mask", default=None, callback=_parse_mask, help="Region to watch: polygon x,y;x,y;x,y;...")
@click.option("--process-width", type=click.IntRange(min=16), default=320, show_default=True, help=WIDTH_HELP)
def snapshot(source, line, out, frames, in_side, person_size, mask, process_width):
    """Write an annotated still or short clip from SOURCE (picamera, a camera index, a file or a stream URL)
    showing the line, the in side, tracks and counts, so an installer can check the camera's placement.

    This is the only command that writes camera pixels to disk; the counter itself never does.
    """
    from footfall.counter.camera.geometry import CountingLine
    from footfall.counter.camera.pipeline import CameraCounter
    from footfall.counter.camera.snapshot import SnapshotError, check_output, render
    from footfall.counter.camera.sources import SourceError, open_source

    try:
        check_output(out)
    except SnapshotError as exc:
        raise click.BadParameter(str(exc), param_hint="'--out'") from None
    if in_side is not None:
        try:
            CountingLine.from_tuple(line).side_sign(in_side)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--in-side'") from None
    try:
        with open_source(source, max_frames=frames) as src:
            counter = CameraCounter(
                line, in_side=in_side, person_size=person_size, mask=mask, process_width=process_width
            )
            result = render(src, counter, out, frames=frames, mask_polygon=mask)
    except (SourceError, SnapshotError) as exc:
        _fail(str(exc))
    click.echo(
        f"wrote {result.path} ({result.frames} frames, in {result.counts['in']}, out {result.counts['out']})"
    )


@click.command("calibrate")
@click.argument("source")
@click.option("--line", "line", required=True, callback=_parse_line, help=LINE_HELP)
@click.option(
    "--in-side", default=None, help="Side where 'in' is: up/down (top/bottom) or L->R/R->L (right/left)."
)
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default="counter.toml",
    show_default=True,
    help="counter.toml to write the size model (and the line and in side) into.",
)
@click.option(
    "--out", "out", default="calibration.png", show_default=True, help="Annotated still (.png/.jpg)."
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=1.0),
    default=180.0,
    show_default=True,
    help="How long to watch a live source (a recorded clip is read to its end or this long).",
)
@click.option("--mask", default=None, callback=_parse_mask, help="Region to watch: polygon x,y;x,y;x,y;...")
@click.option("--process-width", type=click.IntRange(min=16), default=320, show_default=True, help=WIDTH_HELP)
def calibrate(source, line, in_side, config_path, out, seconds, mask, process_width):
    """Watch SOURCE (picamera, a camera index, a stream URL or a recorded clip) while people walk through, learn
    the person size over the frame, write it into counter.toml and save an annotated still to check: the line,
    the in side, and circles one person wide at several places.

    Walk through the door a few times both ways (at least six passes) while it watches. If it could not become
    sure of the size, it says so and writes nothing.
    """
    from pathlib import Path

    import cv2

    from footfall.counter.camera.calibrate import CalibrationError, watch, write_config
    from footfall.counter.camera.geometry import CountingLine
    from footfall.counter.camera.pipeline import CameraCounter
    from footfall.counter.camera.snapshot import STILL_SUFFIXES, annotate
    from footfall.counter.camera.sources import SourceError, open_source

    if Path(out).suffix.lower() not in STILL_SUFFIXES:
        raise click.BadParameter(f"must end in .png or .jpg, got {Path(out).name!r}", param_hint="'--out'")
    direction = None
    if in_side is not None:
        try:
            cl = CountingLine.from_tuple(line)
            direction = cl.direction_name(cl.side_sign(in_side))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--in-side'") from None
    try:
        with open_source(source) as src:
            counter = CameraCounter(line, in_side=in_side, mask=mask, process_width=process_width)
            result = watch(src, counter, seconds=seconds, frames=None)
    except (SourceError, CalibrationError) as exc:
        _fail(str(exc))
    still = annotate(result.last_frame, result.counter, mask)
    if not cv2.imwrite(str(out), still):
        _fail(f"cannot write an image to {out}")
    status = result.status
    click.echo(
        f"watched {result.frames} frames: person size {status['state']}, confidence {status['confidence']:.2f} "
        f"from {status['people']} people, {status.get('size_at_line', 0):.0f} px at the line; still: {out}"
    )
    if result.model is None:
        _fail(
            "not sure of the person size yet: nothing written. Walk through a few more times both ways "
            "(or record a longer clip) and calibrate again."
        )
    try:
        path = write_config(config_path, result.model, line=line, in_side=direction)
    except CalibrationError as exc:
        _fail(str(exc))
    m = result.model
    click.echo(f"wrote [camera] size_model to {path}: diameter = {m.a:.1f} + {m.b:.4f}*y + {m.c:.4f}*x px")
