"""Run a counter process: real pins on a Pi, or `--simulate` with gpiozero's MockFactory driven by a visitor model."""

from __future__ import annotations

import logging
import random
import threading
import time

from footfall import sdnotify
from footfall.counter.app import CounterApp
from footfall.counter.config import CounterConfig
from footfall.signals import wait_for_signal

logger = logging.getLogger(__name__)


class SimClock:
    """The detector's clock during a fast simulation: it follows the scripted edge times."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def set(self, t: float) -> None:
        self.t = t


def simulate_visitors(
    app: CounterApp,
    factory,
    stop: threading.Event,
    rate: float,
    count: int | None,
    seed: int,
    clock: SimClock | None = None,
    done: threading.Event | None = None,
) -> None:
    """Drive the app's mock pins with people walking through at `rate` per second on average, then set `done`
    (after `count` people; never without a count).

    With `clock` (fast mode) the edges are applied at once and the detector's clock follows them; otherwise each
    passage is replayed in real time so the detector sees real timings.
    """
    try:
        _simulate(app, factory, stop, rate, count, seed, clock)
    finally:
        if done is not None and count is not None:
            done.set()


def _simulate(app, factory, stop, rate, count, seed, clock) -> None:
    from footfall.counter.simulate import VisitorModel, drive_pins

    beam = app.config.beam
    pin_a, pin_b = factory.pin(beam.pin_a), factory.pin(beam.pin_b)
    model = VisitorModel(seed, mean_interval=1.0 / rate)
    active_low = not beam.active_high if beam.active_high is not None else beam.pull_up
    if clock is not None:
        edges = model.edges(count or 0)
        drive_pins(pin_a, pin_b, edges, active_low=active_low, on_time=clock.set)
        clock.set((edges[-1][0] if edges else 0.0) + 5.0)  # let the last debounce settle
        app.sensors.tick()
        logger.info("simulated %d people", count or 0)
        return
    walked, start = 0, 0.0
    while not stop.is_set() and (count is None or walked < count):
        batch = min(20, count - walked) if count is not None else 20
        edges = model.edges(batch, start=start)
        drive_pins(pin_a, pin_b, edges, sleep=lambda s: stop.wait(s), active_low=active_low)
        start = edges[-1][0] + 1.0 if edges else start
        walked += batch
    if count is not None and not stop.is_set():
        stop.wait(1.0)  # the detector's debounce and crossing timeout settle the last person
        app.sensors.tick()


def _wait_drained(app: CounterApp, delivered: threading.Event) -> None:
    while app.runtime.outbox.queue:
        time.sleep(0.1)
    delivered.set()


def run_counter(
    config: CounterConfig,
    simulate: bool = False,
    rate: float = 1.0,
    count: int | None = None,
    seed: int | None = None,
    fast: bool = False,
) -> int:
    factory = clock = None
    if simulate:
        from gpiozero.pins.mock import MockFactory

        factory = MockFactory()
        clock = SimClock() if fast else None
    app = CounterApp(config, pin_factory=factory, clock=clock or time.monotonic).start()
    sdnotify.ready()
    stop, finished = threading.Event(), threading.Event()
    if simulate:
        seed = seed if seed is not None else random.randrange(1 << 30)
        threading.Thread(
            target=simulate_visitors,
            args=(app, factory, stop, rate, count, seed, clock, finished),
            daemon=True,
        ).start()
    try:
        wait_for_signal(finished)
        if finished.is_set():
            # --count N: exit once the N people's crossings have left the outbox (a signal stops sooner; what
            # is not yet acknowledged stays in the outbox for the next run).
            logger.info("simulated %s people; waiting for the broker to acknowledge them", count)
            delivered = threading.Event()
            threading.Thread(target=_wait_drained, args=(app, delivered), daemon=True).start()
            wait_for_signal(delivered)
    finally:
        stop.set()
        app.stop()
    return 0
