"""The door counter process: a sensor (break-beam pins or a camera) feeding a crossing detector, publishing
`crossing` events through the shared edge runtime (durable outbox, status, remote config, commands)."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from footfall.counter.beam import BeamDetector, BeamTimings
from footfall.counter.config import CounterConfig, edge_settings
from footfall.edge import EdgeRuntime
from footfall.messages import Crossing

logger = logging.getLogger(__name__)

TICK_S = 0.1
REMOTE_KEYS = ("swap", "debounce", "max_crossing", "stuck_after")


class CounterApp:
    """A break-beam counter. `pin_factory` is gpiozero's (None on a Pi; MockFactory in tests and simulation)."""

    def __init__(self, config: CounterConfig, pin_factory=None, clock: Callable[[], float] = time.monotonic):
        from footfall.counter.sensors import BeamSensors, StatusLed

        self.config = config
        beam = config.beam
        self.swap = beam.swap
        self.timings = BeamTimings(
            debounce=beam.debounce, max_crossing=beam.max_crossing, stuck_after=beam.stuck_after
        )
        self.detector = BeamDetector(self.timings, swap=self.swap)
        self.led = StatusLed(config.led.pin, pin_factory=pin_factory) if config.led.pin is not None else None
        self.runtime = EdgeRuntime(
            edge_settings(config),
            on_config=self.apply_remote_config,
            commands={"identify": self._identify, "reset-health": lambda _msg: self.detector.reset_health()},
            sensor_health=lambda: self.detector.health,
        )
        active_state = beam.active_high
        self.sensors = BeamSensors(
            beam.pin_a,
            beam.pin_b,
            self.detector,
            self.on_crossing,
            clock=clock,
            pull_up=beam.pull_up if active_state is None or beam.pull_up else None,
            active_state=active_state,
            pin_factory=pin_factory,
        )
        self.crossings = 0
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="beam-tick", daemon=True)

    def on_crossing(self, crossing) -> None:
        self.runtime.emit(lambda **kw: Crossing(**kw, direction=crossing.direction, count=crossing.count))
        self.crossings += 1

    def apply_remote_config(self, settings: dict[str, Any]) -> None:
        """Settings from the retained config topic: door direction and beam timings."""
        known = {k: settings[k] for k in REMOTE_KEYS if k in settings}
        unknown = sorted(set(settings) - set(REMOTE_KEYS) - {"v", "room", "door"})
        if unknown:
            logger.warning("ignoring unknown remote settings: %s", ", ".join(unknown))
        try:
            timings = dataclasses.replace(
                self.timings, **{k: float(v) for k, v in known.items() if k != "swap"}
            )
        except (TypeError, ValueError):
            logger.warning("ignoring bad remote settings %r", known)
            return
        swap = bool(known.get("swap", self.swap))
        if (timings, swap) != (self.timings, self.swap):
            logger.info("remote settings applied: swap=%s %s", swap, timings)
            self.timings, self.swap = timings, swap
            self.detector.timings, self.detector.swap = timings, swap

    def _identify(self, message: dict[str, Any]) -> None:
        if self.led is not None:
            self.led.blink(float(message.get("seconds", 10)))
        logger.info("identify requested%s", "" if self.led else " (no LED configured)")

    def _tick_loop(self) -> None:
        while not self._stop.wait(TICK_S):
            self.sensors.tick()

    def start(self) -> CounterApp:
        self.runtime.start()
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._ticker.join(2)
        self.sensors.close()
        if self.led is not None:
            self.led.close()
        self.runtime.stop()
