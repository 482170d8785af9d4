"""The kiosk's subscriber: the retained schedule and room states, into LocalState (schedule cached on disk)."""

from __future__ import annotations

import logging

from footfall import topics
from footfall.kiosk.config import KioskConfig
from footfall.kiosk.local import LocalState
from footfall.link import LinkSettings, MqttLink

logger = logging.getLogger(__name__)


class Feed:
    """A second MQTT connection with a clean session: retained messages arrive on every (re)connect."""

    def __init__(self, config: KioskConfig, local: LocalState):
        site, device, prefix = config.device.site, config.device.id, config.mqtt.prefix
        self.local = local
        self.rejected = 0
        self.prefix = prefix
        self.schedule_topic = topics.schedule(site, prefix)
        self.link = MqttLink(
            f"footfall-{site}-{device}-feed",
            LinkSettings.from_config(config.mqtt),
            clean_session=True,
            subscriptions=[(self.schedule_topic, 1), (topics.all_room_states(site, prefix), 1)],
            on_message=self._on_message,
        )

    def start(self) -> Feed:
        self.link.start()
        return self

    def stop(self) -> None:
        self.link.stop()

    def _on_message(self, message) -> None:
        """Runs on the MQTT thread: never raise (a retained bad message comes back on every reconnect)."""
        try:
            self.take(message.topic, message.payload)
        except Exception:  # noqa: BLE001 - a bad message is logged and counted; the feed goes on
            self.rejected += 1
            logger.exception("ignoring %s: it could not be handled", message.topic)

    def take(self, topic: str, payload: bytes) -> None:
        if topic == self.schedule_topic:
            self.local.set_schedule(payload)
            return
        parts = topic.split("/")
        if len(parts) >= 3 and parts[-1] == "state" and parts[-3] == "room":
            self.local.set_room(parts[-2], payload)
