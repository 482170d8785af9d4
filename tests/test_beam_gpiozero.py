"""Break-beam sensors through gpiozero's own MockFactory: real gpiozero callbacks, a scripted clock, no sleeping."""

from __future__ import annotations

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from footfall.counter.beam import BeamDetector, Crossing
from footfall.counter.sensors import BeamSensors, StatusLed
from footfall.counter.simulate import VisitorModel, day_schedule, drive_pins, expected_counts

PIN_A, PIN_B, PIN_LED = 17, 27, 22


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def set(self, t: float) -> None:
        self.now = t


@pytest.fixture
def factory():
    factory = MockFactory()
    yield factory
    factory.reset()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def door(factory, clock):
    """Sensors with the default wiring (pull-up, LOW = blocked); yields (sensors, crossings list)."""
    crossings: list[Crossing] = []
    sensors = BeamSensors(PIN_A, PIN_B, BeamDetector(), crossings.append, clock=clock, pin_factory=factory)
    yield sensors, crossings
    sensors.close()


def drive(factory, clock, script):
    """script: (t, pin number, "low"|"high") steps; the clock is moved to t before the pin changes."""
    for t, pin, level in script:
        clock.set(t)
        getattr(factory.pin(pin), f"drive_{level}")()


def walk_in(t0):
    """One person walking in through the pins (A low first), done 0.4 s after t0."""
    steps = [(0.0, PIN_A, "low"), (0.1, PIN_B, "low"), (0.3, PIN_A, "high"), (0.4, PIN_B, "high")]
    return [(round(t0 + dt, 9), pin, level) for dt, pin, level in steps]


def settle(sensors, clock, t):
    clock.set(t)
    return sensors.tick()


def test_a_then_b_is_in_through_gpiozero_callbacks(factory, clock, door):
    sensors, crossings = door
    drive(factory, clock, walk_in(1.0))
    assert crossings == []  # the last edge has not held for the debounce time yet
    settle(sensors, clock, 2.0)
    assert crossings == [Crossing(t=1.4, direction="in")]


def test_b_then_a_is_out(factory, clock, door):
    sensors, crossings = door
    drive(
        factory, clock, [(1.0, PIN_B, "low"), (1.1, PIN_A, "low"), (1.3, PIN_B, "high"), (1.4, PIN_A, "high")]
    )
    assert settle(sensors, clock, 2.0) == [Crossing(t=1.4, direction="out")]
    assert crossings == [Crossing(t=1.4, direction="out")]


def test_tailgating_and_abort_through_pins(factory, clock, door):
    sensors, crossings = door
    script = [
        (0.00, PIN_A, "low"),
        (0.10, PIN_B, "low"),
        (0.25, PIN_A, "high"),
        (0.30, PIN_A, "low"),  # second person breaks A while the first still blocks B
        (0.35, PIN_B, "high"),
        (0.40, PIN_B, "low"),
        (0.55, PIN_A, "high"),
        (0.65, PIN_B, "high"),
        (3.00, PIN_A, "low"),  # someone breaks A and backs out
        (3.50, PIN_A, "high"),
    ]
    drive(factory, clock, script)
    settle(sensors, clock, 5.0)
    assert [(c.t, c.direction) for c in crossings] == [(0.35, "in"), (0.65, "in")]


def test_mock_pin_bounce_is_debounced_by_the_detector(factory, clock, door):
    sensors, crossings = door
    script = [
        (1.000, PIN_A, "low"),
        (1.003, PIN_A, "high"),
        (1.006, PIN_A, "low"),
        (1.100, PIN_B, "low"),
        (1.300, PIN_A, "high"),
        (1.400, PIN_B, "high"),
        (1.404, PIN_B, "low"),
        (1.409, PIN_B, "high"),
    ]
    drive(factory, clock, script)
    settle(sensors, clock, 2.0)
    assert crossings == [Crossing(t=1.409, direction="in")]


def test_stuck_beam_health_through_tick(factory, clock, door):
    sensors, crossings = door
    drive(factory, clock, [(0.0, PIN_B, "low")])
    settle(sensors, clock, 5.0)
    assert sensors.health == "ok"
    settle(sensors, clock, 10.5)
    assert sensors.health == "blocked"
    drive(factory, clock, [(12.0, PIN_A, "low"), (12.4, PIN_A, "high"), (20.0, PIN_B, "high")])
    settle(sensors, clock, 21.0)
    assert sensors.health == "ok"
    assert crossings == []


def test_visitor_model_through_mock_pins(factory, clock, door):
    sensors, crossings = door
    edges = VisitorModel(42, tailgate_rate=0.25, bounce_rate=0.2).edges(150)
    applied = drive_pins(factory.pin(PIN_A), factory.pin(PIN_B), edges, on_time=clock.set)
    assert applied == len(edges)
    settle(sensors, clock, edges[-1].t + 1.0)
    truth = expected_counts(edges)
    got = [c.direction for c in crossings]
    assert (got.count("in"), got.count("out")) == truth
    assert truth.ins + truth.outs == 150


def test_a_day_through_mock_pins(factory, clock, door):
    sensors, crossings = door
    edges = VisitorModel(8).edges_for(day_schedule(8, visits=300))
    drive_pins(factory.pin(PIN_A), factory.pin(PIN_B), edges, on_time=clock.set)
    settle(sensors, clock, edges[-1].t + 1.0)
    got = [c.direction for c in crossings]
    assert (got.count("in"), got.count("out")) == (300, 300)


def test_drive_pins_with_a_sleep_function_waits_scaled_intervals(factory, clock, door):
    sensors, crossings = door
    waits: list[float] = []
    edges = [(1.0, "A", True), (1.1, "B", True), (1.3, "A", False), (1.4, "B", False)]
    drive_pins(
        factory.pin(PIN_A), factory.pin(PIN_B), edges, sleep=waits.append, speed=2.0, on_time=clock.set
    )
    assert waits == pytest.approx([0.05, 0.1, 0.05])
    settle(sensors, clock, 2.0)
    assert [c.direction for c in crossings] == ["in"]


def test_active_high_wiring_with_pull_down(factory, clock):
    crossings: list[Crossing] = []
    sensors = BeamSensors(
        PIN_A, PIN_B, BeamDetector(), crossings.append, clock=clock, pull_up=False, pin_factory=factory
    )
    try:
        drive(factory, clock, [(1.0, PIN_A, "high"), (1.1, PIN_B, "high"), (1.3, PIN_A, "low")])
        drive(factory, clock, [(1.4, PIN_B, "low")])
        settle(sensors, clock, 2.0)
        assert [c.direction for c in crossings] == ["in"]
    finally:
        sensors.close()


def test_blocked_high_with_pull_up(factory, clock):
    crossings: list[Crossing] = []
    sensors = BeamSensors(
        PIN_A, PIN_B, BeamDetector(), crossings.append, clock=clock, active_state=True, pin_factory=factory
    )
    try:
        # the pull-up holds the idle lines high, which here means blocked: both beams read blocked at start,
        # and whoever that is, they are not counted when the beams clear
        assert sensors.detector.levels == (True, True)
        drive(factory, clock, [(1.0, PIN_A, "low"), (1.1, PIN_B, "low")])
        settle(sensors, clock, 2.0)
        assert sensors.detector.levels == (False, False)
        assert crossings == []
        script = [(3.0, PIN_B, "high"), (3.1, PIN_A, "high"), (3.3, PIN_B, "low"), (3.4, PIN_A, "low")]
        drive(factory, clock, script)
        settle(sensors, clock, 4.0)
        assert [c.direction for c in crossings] == ["out"]
    finally:
        sensors.close()


def test_external_resistors_need_an_active_state(factory, clock):
    crossings: list[Crossing] = []
    with pytest.raises(ValueError):
        BeamSensors(
            PIN_A, PIN_B, BeamDetector(), crossings.append, clock=clock, pull_up=None, pin_factory=factory
        )
    with BeamSensors(
        PIN_A,
        PIN_B,
        BeamDetector(),
        crossings.append,
        clock=clock,
        pull_up=None,
        active_state=False,
        pin_factory=factory,
    ) as sensors:
        factory.pin(PIN_A).drive_high()
        factory.pin(PIN_B).drive_high()
        settle(sensors, clock, 0.5)
        drive(
            factory,
            clock,
            [(1.0, PIN_A, "low"), (1.1, PIN_B, "low"), (1.3, PIN_A, "high"), (1.4, PIN_B, "high")],
        )
        settle(sensors, clock, 2.0)
    assert [c.direction for c in crossings] == ["in"]


def test_swap_through_pins(factory, clock):
    crossings: list[Crossing] = []
    with BeamSensors(
        PIN_A, PIN_B, BeamDetector(swap=True), crossings.append, clock=clock, pin_factory=factory
    ) as sensors:
        drive(factory, clock, walk_in(1.0))
        settle(sensors, clock, 2.0)
    assert [c.direction for c in crossings] == ["out"]


def test_failing_callback_does_not_stop_counting(factory, clock):
    seen: list[Crossing] = []

    def flaky(crossing: Crossing) -> None:
        seen.append(crossing)
        if len(seen) == 1:
            raise RuntimeError("outbox hiccup")

    with BeamSensors(PIN_A, PIN_B, BeamDetector(), flaky, clock=clock, pin_factory=factory) as sensors:
        drive(factory, clock, walk_in(1.0))
        drive(factory, clock, walk_in(3.0))
        settle(sensors, clock, 4.0)
    assert len(seen) == 2


def test_close_releases_pins_and_stops_feeding(factory, clock):
    crossings: list[Crossing] = []
    sensors = BeamSensors(PIN_A, PIN_B, BeamDetector(), crossings.append, clock=clock, pin_factory=factory)
    sensors.close()
    sensors.close()  # twice is fine
    drive(factory, clock, walk_in(1.0))
    assert sensors.tick() == []
    assert crossings == []
    # the pins are free again
    again = BeamSensors(PIN_A, PIN_B, BeamDetector(), crossings.append, clock=clock, pin_factory=factory)
    again.close()


def test_beam_blocked_at_start_is_seen(factory, clock):
    # external resistors (no internal pull), so the level driven before start-up stays: A is blocked
    factory.pin(PIN_A).drive_low()
    factory.pin(PIN_B).drive_high()
    crossings: list[Crossing] = []
    with BeamSensors(
        PIN_A,
        PIN_B,
        BeamDetector(),
        crossings.append,
        clock=clock,
        pull_up=None,
        active_state=False,
        pin_factory=factory,
    ) as sensors:
        assert sensors.detector.levels == (True, False)
        # the one on A walks in: they were there before we looked, so they are not counted
        drive(factory, clock, [(0.5, PIN_B, "low"), (0.7, PIN_A, "high"), (0.8, PIN_B, "high")])
        settle(sensors, clock, 1.0)
        assert crossings == []
        drive(factory, clock, [(2.0, PIN_A, "low")])
        settle(sensors, clock, 13.0)
        assert sensors.health == "blocked"


def test_default_pin_factory_via_device(clock):
    previous = Device.pin_factory
    Device.pin_factory = MockFactory()
    try:
        crossings: list[Crossing] = []
        with BeamSensors(PIN_A, PIN_B, BeamDetector(), crossings.append, clock=clock) as sensors:
            drive(Device.pin_factory, clock, [(1.0, PIN_A, "low"), (1.1, PIN_B, "low")])
            drive(Device.pin_factory, clock, [(1.3, PIN_A, "high"), (1.4, PIN_B, "high")])
            settle(sensors, clock, 2.0)
        assert [c.direction for c in crossings] == ["in"]
    finally:
        Device.pin_factory.reset()
        Device.pin_factory = previous


def test_status_led_blinks_and_closes(factory):
    led = StatusLed(PIN_LED, pin_factory=factory)
    try:
        led.blink(0)
        assert not led.is_lit
        led.blink(3)  # background thread; just check it starts without blocking and stops on off()
        led.off()
        assert not led.is_lit
        assert factory.pin(PIN_LED).state in (0, False)
    finally:
        led.close()
