"""The camera counter on real overhead footage (../shared relative to the project root)."""

from __future__ import annotations

import pytest

from tests.camera_footage import require_bus


@pytest.fixture(scope="module")
def bus_result():
    from footfall.counter.camera.evaluate import evaluate_video, read_crossings, score

    bus = require_bus()
    truth = read_crossings(bus / "bus_crossings.csv")
    detected = evaluate_video(bus / "bus.avi", (0, 120, 319, 120))
    return detected, truth, {s.direction: s for s in score(detected, truth)}


@pytest.mark.parametrize("direction", ["up", "down"])
def test_bus_f1_per_direction(bus_result, direction):
    _, _, scores = bus_result
    s = scores[direction]
    assert s.f1 >= 0.95, f"{direction}: precision {s.precision:.2f} recall {s.recall:.2f}"


def test_bus_u_turn_at_the_end_counts_nothing(bus_result):
    detected, _, _ = bus_result
    # Trap rows in the reference notes: a partly visible person at 882-892 and a U-turn at 894-926. The only
    # real crossing near there is frame 888 (down).
    late = [(c.frame, c.direction) for c in detected if c.frame >= 880]
    assert late == [(888, "down")] or (
        len(late) == 1 and late[0][1] == "down" and abs(late[0][0] - 888) <= 10
    )


def test_missing_footage_fails_and_names_what_is_missing(tmp_path):
    # Without the shared footage the camera tests fail (never skip), saying which file is missing and where.
    folder = tmp_path / "shared" / "footage" / "bus-overhead"
    folder.mkdir(parents=True)
    (folder / "bus.avi").write_bytes(b"")
    with pytest.raises(pytest.fail.Exception, match="camera footage missing: .*bus_crossings.csv") as info:
        require_bus(folder)
    assert "bus.avi," not in str(info.value) and "shared/footage/bus-overhead/" in str(info.value)
