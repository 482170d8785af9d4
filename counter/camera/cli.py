"""Installer commands for the camera counter: ``evaluate`` a recorded clip and render a placement ``snapshot``.

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


@click.command("evaluate")
@click.argument("video")
@click.option("--line", "line", required=True, callback=_parse_line, help=LINE_HELP)
@click.option(
    "--truth", type=click.Path(exists=True, dir_okay=False), help="Reference crossings CSV to score against."
)
@click.option("--person-size", type=click.FloatRange(min=1.0), default=None, help=PERSON_HELP)
@click.option("--process-width", type=click.IntRange(min=16), default=320, show_default=True, help=WIDTH_HELP)
def evaluate(video, line, truth, person_size, process_width):
    """Count the crossings in a recorded VIDEO and print them as CSV (frame,direction).

    With --truth, also print per-direction precision, recall, F1 and count error on standard error
    (a detection matches a reference crossing of the same direction within 10 frames).
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
    try:
        detected = evaluate_video(video, line, person_size=person_size, process_width=process_width)
    except SourceError as exc:
        _fail(str(exc))
    click.echo(format_crossings(detected), nl=False)
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
