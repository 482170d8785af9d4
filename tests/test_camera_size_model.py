"""The size learner's pure core (counter/camera/size_model.py): blobs in, a person-size plane and a confidence out.

Walkers are made of plain Blob records whose diameter follows a known plane, as people do on a flat floor seen
from a tilted camera; no image is involved.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from footfall.counter.camera.geometry import CountingLine
from footfall.counter.camera.size_model import (
    LEARNING,
    OK,
    UNSURE,
    LearnerConfig,
    SizeLearner,
    SizeModel,
    _robust_plane,
)
from footfall.counter.camera.tracker import Blob

FRAME = (320, 240)
LINE = CountingLine(0, 120, 319, 120)
TRUE = SizeModel(20.0, 0.2, 0.0)  # 20 px across at the top, 68 px at the bottom


def blob(x: float, y: float, d: float) -> Blob:
    return Blob(x, y, math.pi / 4 * d * d, (x - d / 2, y - d / 2, x + d / 2, y + d / 2))


def walker(x: float, y0: float, y1: float, model: SizeModel = TRUE, step: float = 4.0, jitter=None):
    """Per frame, one blob walking from y0 to y1 at ``step`` px a frame, its size from ``model`` (times the jitter
    factor of that frame, if given)."""
    n = int(abs(y1 - y0) / step)
    out = []
    for k in range(n + 1):
        y = y0 + (y1 - y0) * k / n
        d = model.at(x, y) * (jitter[k % len(jitter)] if jitter else 1.0)
        out.append([blob(x, y, d)])
    return out


def feed(learner: SizeLearner, frames, gap: int = LearnerConfig().refit_frames + 3):
    """Frames of blobs, then empty frames until the learner has closed the chains that ended and fitted again."""
    fit = None
    for blobs in list(frames) + [[] for _ in range(gap)]:
        fit = learner.observe(blobs)
    return fit


def people(n: int, seed: int = 0, y_range=(55.0, 200.0)):
    rng = np.random.default_rng(seed)
    for k in range(n):
        x = float(rng.uniform(60, 260))
        ya, yb = y_range
        yield walker(x, ya, yb) if k % 2 == 0 else walker(x, yb, ya)


def test_nothing_learned_before_two_people():
    learner = SizeLearner(FRAME, LINE)
    assert feed(learner, walker(160, 55, 200)) is None and learner.people == 1


def test_a_few_people_give_one_unsure_size():
    learner = SizeLearner(FRAME, LINE)
    for frames in people(3):
        fit = feed(learner, frames)
    assert fit.state == UNSURE and fit.model.is_constant
    assert TRUE.at(0, 55) < fit.model.a < TRUE.at(0, 200)  # the median of what was seen
    assert fit.confidence < 0.5 or learner.people < LearnerConfig().people_for_ok


def test_enough_people_give_the_plane_with_confidence():
    learner = SizeLearner(FRAME, LINE)
    for frames in people(10):
        fit = feed(learner, frames)
    assert fit.state == OK and fit.people == 10 and fit.confidence >= 0.5
    for x, y in [(60, 60), (160, 120), (260, 190)]:
        assert fit.model.at(x, y) == pytest.approx(TRUE.at(x, y), rel=0.1)
    assert abs(fit.model.c) < 0.02  # no slope across the frame where there is none


def test_a_person_standing_still_teaches_nothing():
    learner = SizeLearner(FRAME, LINE)
    feed(learner, [[blob(100, 100, 40)] for _ in range(60)])
    assert learner.people == 0


def test_a_blob_that_jumps_in_size_is_not_a_person():
    # Fragments and merges flicker: every other frame the blob is a quarter wider.
    learner = SizeLearner(FRAME, LINE)
    feed(learner, walker(160, 55, 200, jitter=[1.0, 1.25]))
    assert learner.people == 0


def test_blobs_cut_by_the_frame_edge_give_no_samples():
    learner = SizeLearner(FRAME, LINE)
    big = SizeModel.constant(60.0)
    feed(learner, walker(10, 55, 200, model=big))  # its box pokes out of the left edge all the way
    assert learner.people == 0


def test_merged_pairs_are_outvoted():
    learner = SizeLearner(FRAME, LINE)
    for k, frames in enumerate(people(12, seed=3)):
        if k % 4 == 3:  # every fourth "person" is two side by side: one blob 1.5 times as wide
            frames = [[blob(b.cx, b.cy, 1.5 * math.sqrt(4 * b.area / math.pi))] for (b,) in frames]
        fit = feed(learner, frames)
    assert fit.state == OK
    assert fit.model.at(160, 120) == pytest.approx(TRUE.at(160, 120), rel=0.15)


def test_confidence_is_lower_when_people_are_seen_on_one_side_of_the_line_only():
    both, one = SizeLearner(FRAME, LINE), SizeLearner(FRAME, LINE)
    for frames in people(10):
        fit_both = feed(both, frames)
    for frames in people(10, y_range=(30.0, 100.0)):  # never past the line at y=120
        fit_one = feed(one, frames)
    assert fit_one.confidence < fit_both.confidence


def test_confidence_is_lower_when_sizes_scatter():
    steady, scattered = SizeLearner(FRAME, LINE), SizeLearner(FRAME, LINE)
    rng = np.random.default_rng(7)
    for frames in people(10):
        fit_steady = feed(steady, frames)
        f = float(rng.uniform(0.4, 2.2))  # people of very different sizes, or no plane at all
        fit_scattered = feed(
            scattered, [[blob(b.cx, b.cy, f * math.sqrt(4 * b.area / math.pi))] for (b,) in frames]
        )
    assert fit_scattered.confidence < fit_steady.confidence


def test_robust_plane_ignores_outliers():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 320, 300), rng.uniform(0, 240, 300)
    d = TRUE.a + TRUE.b * y + rng.normal(0, 1.0, 300)
    d[:60] *= 2.5  # a fifth of the samples are merged groups
    (a, b, c), _ = _robust_plane(x, y, d, np.ones_like(d), FRAME)
    assert a == pytest.approx(TRUE.a, abs=3) and b == pytest.approx(TRUE.b, abs=0.02) and abs(c) < 0.01


def test_size_model_floor_scale_and_config():
    model = SizeModel.bounded(-40.0, 0.5, 0.0, FRAME)  # would go negative near the top of the frame
    assert model.floor == pytest.approx(0.25 * (-40 + 0.5 * 240)) and model.at(0, 0) == model.floor
    assert model.scaled(0.5).at(0, 100) == pytest.approx(0.5 * model.at(0, 200))  # frames half as large
    assert SizeModel.from_config(model.to_config()).at(100, 200) == pytest.approx(
        model.at(100, 200), rel=1e-3
    )
    assert SizeModel.constant(30).is_constant and not TRUE.is_constant


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"a": "x"},
        {"a": float("nan")},
        {"a": 10, "floor": 0},
        {"a": 10, "depth": 1.5},
        {"a": 10, "b": None},
    ],
)
def test_size_model_rejects_bad_config(data):
    with pytest.raises(ValueError):
        SizeModel.from_config(data)


def test_learning_state_names():
    assert (LEARNING, UNSURE, OK) == ("learning", "unsure", "ok")


def test_a_blob_that_moved_only_while_cut_by_the_edge_is_not_a_person():
    # Dragged in from the frame edge (never whole, so never measured), then still: a light at a pole, say.
    learner = SizeLearner(FRAME, LINE)
    cut = [[blob(x, 120, 30)] for x in range(-20, 16, 2)]  # its box pokes out of the left edge all along
    still = [[blob(18, 120, 30)] for _ in range(12)]  # whole, but it has stopped: 38 px from where it began
    feed(learner, cut + still)
    assert learner.people == 0


def test_few_people_of_very_different_sizes_give_no_size_yet():
    # A walking fragment and a person: no coin toss between 20 and 60 px; the counter keeps its starting size.
    learner = SizeLearner(FRAME, LINE)
    feed(learner, walker(100, 55, 200, model=SizeModel.constant(20.0)))
    fit = feed(learner, walker(200, 200, 55, model=SizeModel.constant(60.0)))
    assert fit is None and learner.people == 2
    fit = feed(learner, walker(150, 55, 200, model=SizeModel.constant(58.0)))  # a third settles it
    assert fit.state == UNSURE and fit.model.a > 50
