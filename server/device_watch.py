"""What ingest learns about its devices beyond their events, raised as staff alerts (`server.alerting`) so that no
edge fails quietly (docs/protocol.md, "Devices the server watches"):

- `unknown_device`: a device id the site file does not know publishes; it is also told why (its ack topic).
- `wrong_site`: a device of this site file publishes its status under another site, where no server runs.
- `duplicate_device`: two processes take turns on one device id (their statuses carry different `instance`s).
- `clock_skew`: the median gap between a device's status `ts` and the server's receive time, over the last few
  minutes, is beyond `[alerts] clock_skew_max_s`, even when the device believes it is synced.
- `seq_gap`: a device's `seq` starts again (its outbox was emptied, replaced or lost): the alert names the range of
  events that never arrived.

All state is kept in memory per ingest process; the alerts themselves are stored in the batch's transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import statistics
from collections import deque
from typing import Any

from footfall.clock import parse_ts
from footfall.server.alerting import clear_alert, raise_alert

logger = logging.getLogger(__name__)

SKEW_WINDOW = dt.timedelta(minutes=5)
SKEW_MIN_SAMPLES = 3
DUPLICATE_WINDOW = dt.timedelta(minutes=10)
TELL_EVERY = dt.timedelta(minutes=1)  # a refused device is told why at most this often


class DeviceWatch:
    def __init__(self, site: Any):
        self.site = site
        self.skew_max = float(site.alerts.clock_skew_max_s)
        self.sites_with_server: set[str] = {site.id}
        self._skews: dict[str, deque[tuple[dt.datetime, float]]] = {}
        self._instances: dict[str, deque[tuple[dt.datetime, str]]] = {}
        self._high_seq: dict[str, int] = {}
        self._told: dict[str, dt.datetime] = {}
        self.refusals: dict[str, str] = {}  # device -> why, to publish on its ack topic after the batch
        self.changed = False  # an alert was raised or cleared in this batch

    # --- unknown device, wrong site -----------------------------------------------------------

    def unknown_device(self, tx: Any, device: str, now: dt.datetime) -> None:
        why = (
            f"device {device!r} is not in the site file of site {self.site.id!r}: nothing it sends is counted"
            " (add it to [[devices]] or fix [device] id)"
        )
        _, opened = raise_alert(tx, "unknown_device", device, why, now)
        self.changed |= opened
        last = self._told.get(device)
        if last is None or now - last >= TELL_EVERY:
            self._told[device] = now
            self.refusals[device] = why

    def foreign(
        self, tx: Any, site: str, kind: str, device: str | None, payload: bytes, now: dt.datetime
    ) -> None:
        """A message under another site's topics (ingest listens to every site's server and device status)."""
        if kind == "server-status":
            if payload:
                self.sites_with_server.add(site)
            return
        if kind != "status" or device not in self.site.devices_by_id or site in self.sites_with_server:
            return
        if b'"online"' not in payload:
            return
        why = (
            f"device {device!r} of this site file publishes under site {site!r}, where no Footfall server runs:"
            f" nothing it counts arrives here (set [device] site = {self.site.id!r})"
        )
        _, opened = raise_alert(tx, "wrong_site", device, why, now)
        self.changed |= opened

    # --- status: duplicate ids, clock skew, seq restart -----------------------------------------

    def status(
        self,
        tx: Any,
        device: str,
        fields: dict[str, Any],
        device_ts: str | None,
        retained: bool,
        now: dt.datetime,
    ) -> None:
        """Called with the fields about to be stored for an `online` status; may flag `health` in place."""
        health = fields.get("health") if isinstance(fields.get("health"), dict) else None
        if health is not None and isinstance(health.get("instance"), str) and not retained:
            self._check_duplicate(tx, device, health["instance"], now)
        if device_ts and not retained:  # a retained status was published a while ago: no measure of the clock
            self._check_skew(tx, device, device_ts, now, health)
        if isinstance(fields.get("last_seq"), int):
            self._check_restart_by_status(tx, device, fields["last_seq"], now)

    def _check_duplicate(self, tx: Any, device: str, instance: str, now: dt.datetime) -> None:
        seen = self._instances.setdefault(device, deque(maxlen=50))
        seen.append((now, instance))
        while seen and now - seen[0][0] > DUPLICATE_WINDOW:
            seen.popleft()
        order = [i for _t, i in seen]
        # A restart gives A..A B..B; two devices sharing an id take turns: A B A.
        changes = sum(1 for a, b in zip(order, order[1:], strict=False) if a != b)
        if changes >= 2 and len(set(order)) >= 2:
            why = (
                f"two devices use the id {device!r}: {len(set(order))} different processes took turns on it in the"
                " last 10 minutes and take the broker connection from each other; give each its own id"
            )
            _, opened = raise_alert(tx, "duplicate_device", device, why, now)
            self.changed |= opened

    def _check_skew(
        self, tx: Any, device: str, device_ts: str, now: dt.datetime, health: dict[str, Any] | None
    ) -> None:
        try:
            skew = (now - parse_ts(device_ts)).total_seconds()  # > 0: the device's clock is behind
        except ValueError:
            return
        samples = self._skews.setdefault(device, deque(maxlen=20))
        samples.append((now, skew))
        while samples and now - samples[0][0] > SKEW_WINDOW:
            samples.popleft()
        if len(samples) < SKEW_MIN_SAMPLES:
            return
        median = statistics.median(s for _t, s in samples)
        if abs(median) > self.skew_max:
            minutes = abs(median) / 60
            why = (
                f"the clock of {device!r} is {minutes:.0f} min {'slow' if median > 0 else 'fast'} (median of"
                f" {len(samples)} status messages over the last minutes; bound {self.skew_max:.0f} s): its events"
                " are stamped with the wrong time; check its time sync (NTP)"
            )
            _, opened = raise_alert(tx, "clock_skew", device, why, now)
            self.changed |= opened
            if health is not None:
                health["clock"] = "skewed"
                health["clock_skew_s"] = round(median, 1)
        elif clear_alert(tx, "clock_skew", device, now):
            self.changed = True

    def _stored_high(self, tx: Any, device: str) -> int:
        return tx.highest_seq(device)

    def _check_restart_by_status(self, tx: Any, device: str, last_seq: int, now: dt.datetime) -> None:
        before = tx.device_last_seq(device)
        if before is None or last_seq >= before:
            return
        stored = self._stored_high(tx, device)
        self._restarted(tx, device, stored, before, now)

    def _restarted(self, tx: Any, device: str, stored: int, reported: int | None, now: dt.datetime) -> None:
        if reported is not None and reported > stored:
            lost = f"lost: seq {stored + 1}-{reported} (the device had counted them; they never arrived)"
        else:
            lost = (
                f"lost: seq {stored + 1} onward, whatever the device had counted and not yet sent"
                f" (the server has every event up to seq {stored}; how many more there were is not known)"
            )
        why = (
            f"the outbox of {device!r} started again from seq 1: {lost}. Its outbox file was emptied, damaged or"
            " replaced, or two devices use this id"
        )
        logger.error("%s", why)
        raise_alert(tx, "seq_gap", device, why, now)
        self.changed = True
        self._high_seq[device] = 0

    # --- events: seq going back without a status saying so ---------------------------------------

    def events(self, tx: Any, device: str, fresh: list[tuple[int, str]], now: dt.datetime) -> None:
        """New (never stored) events of a device, after they were inserted: a seq at or below the highest one
        seen before, taken by another event id, means the device's seq started again."""
        high = self._high_seq.get(device)
        if high is None:
            high = self._high_seq[device] = self._stored_high_before(tx, device, fresh)
        taken: set[tuple[int, str]] | None = None
        for index, (seq, event_id) in enumerate(fresh):
            if seq > high:
                high = seq
                continue
            if taken is None:
                # The rest of the batch in one query, not one per event: with ingest workers each sees only its
                # share of a device's seqs, most of them below the highest another worker stored.
                taken = tx.seqs_taken(device, fresh[index:])
            if (seq, event_id) in taken:
                # Not already reported (with its range) from the device's status?
                if tx.open_alert("seq_gap", device) is None:
                    self._restarted(tx, device, high, None, now)
                high = 0
            high = max(high, seq)
        self._high_seq[device] = high

    def _stored_high_before(self, tx: Any, device: str, fresh: list[tuple[int, str]]) -> int:
        return tx.highest_seq(device, besides=[event_id for _seq, event_id in fresh])

    def take_refusals(self) -> dict[str, str]:
        out, self.refusals = self.refusals, {}
        return out
