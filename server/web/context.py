"""What every view needs (the site, the store, the live hub, the clock), kept apart from the app factory so
that the views can import it while the factory imports the views: no import circle."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from footfall.server.store import Store
from footfall.site import SiteConfig


@dataclass
class WebContext:
    """What every view needs: the site, the store, the live hub and the clock."""

    site: SiteConfig
    store: Store
    live: Any  # LiveHub, or LocalHub when there is no MQTT (tests)
    app: Flask

    def now(self) -> dt.datetime:
        return self.app.config["FOOTFALL_NOW"]()


def web() -> WebContext:
    return current_app.extensions["footfall"]
