"""gpiozero wiring of a break-beam door: two input pins feed the pure :class:`~counter.beam.BeamDetector`.

This is the only module of the counter that imports gpiozero. Tests pass gpiozero's own ``MockFactory`` as
``pin_factory`` and a fake ``clock``; on a Pi the default pin factory (lgpio) is used.

gpiozero callbacks run on its own threads (one per pin on real hardware, synchronously in the caller with mock
pins); a lock serialises them into the detector. ``bounce_time`` is not used: debounce is the detector's job
(MockFactory ignores ``bounce_time``, and the detector's debounce is tested).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from gpiozero import LED, DigitalInputDevice

from footfall.counter.beam import BeamDetector, Crossing, Health

logger = logging.getLogger(__name__)


class BeamSensors:
    """Beams A (outside) and B (inside) on two GPIO pins, feeding ``detector``; ``on_crossing(c)`` per crossing.

    Electrical level: with ``pull_up=True`` (the default; the internal pull-up, for open-collector IR receivers
    that pull the line low when the beam is broken) a LOW pin means *blocked*. ``pull_up=False`` uses the
    pull-down and HIGH means blocked. ``active_state`` says explicitly which level means blocked (True = HIGH,
    False = LOW): it is required with ``pull_up=None`` (external resistors, no internal pull) and overrides the
    default of the chosen pull otherwise (for receivers that drive the line high when the beam is broken).

    Edges complete only once they have held for the debounce time, so call :meth:`tick` regularly (every
    0.1-0.5 s) to finish the last crossing after a quiet spell and to notice a stuck beam. ``on_crossing`` is
    called with the lock held, in order; keep it short (hand the crossing to the outbox) and do not call back in.
    """

    def __init__(
        self,
        pin_a,
        pin_b,
        detector: BeamDetector,
        on_crossing: Callable[[Crossing], object],
        clock: Callable[[], float] = time.monotonic,
        pull_up: bool | None = True,
        active_state: bool | None = None,
        pin_factory=None,
    ) -> None:
        if pull_up is None and active_state is None:
            raise ValueError(
                "with pull_up=None (external resistors) active_state must say which level is blocked"
            )
        self.detector = detector
        self._on_crossing = on_crossing
        self._clock = clock
        self._lock = threading.RLock()
        self._closed = False
        # gpiozero: pull_up=True means active (is_active) when LOW, pull_up=False active when HIGH, and
        # active_state may only be given with pull_up=None. "Blocked" may be the opposite of gpiozero's "active".
        if pull_up is None:
            device_kwargs = {"pull_up": None, "active_state": active_state}
            invert = False
        else:
            device_kwargs = {"pull_up": pull_up}
            blocked_high = not pull_up if active_state is None else active_state
            invert = blocked_high == pull_up  # pull-up + blocked HIGH, or pull-down + blocked LOW
        self._invert = invert
        self._devices: dict[str, DigitalInputDevice] = {}
        try:
            for beam, pin in (("A", pin_a), ("B", pin_b)):
                device = DigitalInputDevice(pin, bounce_time=None, pin_factory=pin_factory, **device_kwargs)
                self._devices[beam] = device
        except Exception:
            self.close()
            raise
        with self._lock:
            a_blocked, b_blocked = (self._blocked(device.is_active) for device in self._devices.values())
            if a_blocked or b_blocked:
                logger.info("beams blocked at start: A=%s B=%s", a_blocked, b_blocked)
            self.detector.set_levels(self._clock(), a_blocked, b_blocked)
            for beam, device in self._devices.items():
                device.when_activated = self._callback(beam, True)
                device.when_deactivated = self._callback(beam, False)
        logger.info(
            "beam sensors on A=%s B=%s (pull_up=%s, blocked=%s)",
            pin_a,
            pin_b,
            pull_up,
            "HIGH" if (not pull_up if active_state is None else active_state) else "LOW",
        )

    @property
    def health(self) -> Health:
        with self._lock:
            return self.detector.health

    def tick(self) -> list[Crossing]:
        """Advance the detector to now; returns (and reports) any crossings that completed."""
        with self._lock:
            if self._closed:
                return []
            return self._emit(self.detector.tick(self._clock()))

    def close(self) -> None:
        """Detach the callbacks and release both pins. Safe to call twice."""
        with self._lock:
            self._closed = True
            devices, self._devices = self._devices, {}
        for device in devices.values():
            device.when_activated = None
            device.when_deactivated = None
            device.close()

    def __enter__(self) -> BeamSensors:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------------------

    def _blocked(self, active: bool) -> bool:
        return bool(active) != self._invert

    def _callback(self, beam: str, active: bool) -> Callable[[], None]:
        blocked = self._blocked(active)

        def on_edge() -> None:
            with self._lock:
                if self._closed:
                    return
                self._emit(self.detector.feed(self._clock(), beam, blocked))

        return on_edge

    def _emit(self, crossings: list[Crossing]) -> list[Crossing]:
        for crossing in crossings:
            try:
                self._on_crossing(crossing)
            except Exception:
                logger.exception("on_crossing failed for %s", crossing)
        return crossings


class StatusLed:
    """An optional LED on the counter, blinked by the ``identify`` command so an installer can find the device."""

    def __init__(self, pin, pin_factory=None) -> None:
        self._led = LED(pin, pin_factory=pin_factory)

    def blink(self, seconds: float, period: float = 0.5) -> None:
        """Blink for about ``seconds`` (in the background), then stay off."""
        if seconds <= 0:
            self._led.off()
            return
        cycles = max(1, round(seconds / period))
        self._led.blink(on_time=period / 2, off_time=period / 2, n=cycles, background=True)

    @property
    def is_lit(self) -> bool:
        return bool(self._led.is_lit)

    def off(self) -> None:
        self._led.off()

    def close(self) -> None:
        self._led.close()
