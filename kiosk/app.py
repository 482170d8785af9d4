"""The kiosk's Flask app: the touch UI page, its JSON endpoints, and staff mode. Listens on localhost only.

`create_app(config, runtime=None, test_config=None)`: without a runtime the app builds an EdgeRuntime from the
config and does not start it (check-ins are stored in the durable outbox; `kiosk.main.run` starts one).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from footfall import i18n
from footfall.clock import format_ts, parse_day_start, utcnow
from footfall.edge import EdgeRuntime, EdgeSettings
from footfall.errors import ValidationError
from footfall.kiosk.camera import decode_qr, ffmpeg_frame_source
from footfall.kiosk.config import LANGUAGES, KioskConfig
from footfall.kiosk.flow import SCHEDULED, normalize_member, parse_checkin
from footfall.kiosk.guard import Guard
from footfall.kiosk.guard import install as install_guard
from footfall.kiosk.local import LocalState
from footfall.kiosk.pin import PinLimiter
from footfall.kiosk.schedule import local_now, open_items, todays_items
from footfall.kiosk.staff import bp as staff_bp
from footfall.link import LinkSettings
from footfall.messages import Checkin, Help
from footfall.outbox import OutboxFull

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
HELP_REPEAT_S = 120  # a second tap within this time does not raise a second alert


def load_catalogs() -> dict[str, dict[str, str]]:
    # The level words are the dashboard's and the lobby's too (footfall.levels, merged in by the loader).
    return i18n.load_catalogs(HERE / "i18n", "level_")


def build_runtime(config: KioskConfig, **hooks: Any) -> EdgeRuntime:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    path = config.data_dir / "outbox.db"
    settings = EdgeSettings(
        site=config.device.site,
        device=config.device.id,
        kind="kiosk",
        outbox_path=str(path),
        link=LinkSettings.from_config(config.mqtt),
        prefix=config.mqtt.prefix,
        clock=config.device.clock,
        max_events=config.outbox.max_events,
        high_water=config.outbox.high_water,
        window=config.outbox.window,
    )
    # A damaged outbox.db raises OutboxDamaged naming the file: `footfall kiosk` prints that one line and exits.
    return EdgeRuntime(settings, **hooks)


class Kiosk:
    """The app's state: config, runtime, local store, clock, camera, help request and staff sessions."""

    def __init__(
        self,
        config: KioskConfig,
        runtime: EdgeRuntime | None,
        now: Callable[[], dt.datetime] = utcnow,
        frame_source: Callable[[], Any] | None = None,
        overrides: dict[str, Any] | None = None,
    ):
        self.config = config
        self.local = LocalState(config.data_dir)
        self.now = now
        self.settings = dataclasses.replace(config.kiosk, **(overrides or {}))
        self.day_starts = parse_day_start(config.kiosk.day_starts)
        self.help_at: dt.datetime | None = None
        self.help_pending = False
        self.help_seq: int | None = None  # the help event waiting for the server's confirmation
        self.lock = threading.Lock()
        self.staff_tokens: dict[str, float] = {}
        self.pins = PinLimiter()
        self.guard = Guard(config.allowed_hosts)
        if runtime is None:
            runtime = build_runtime(config, **self.runtime_hooks())
        else:
            runtime.commands.setdefault("help-clear", self.clear_help)
        self.runtime = runtime
        if frame_source is None and config.kiosk.camera:
            frame_source = ffmpeg_frame_source(config.kiosk.camera_device)
        self.frame_source = frame_source
        self.catalogs = load_catalogs()

    def runtime_hooks(self) -> dict[str, Any]:
        """EdgeRuntime hooks: the `help-clear` command and the kiosk's extra health fields."""
        return {"commands": {"help-clear": self.clear_help}, "extra_health": self.health}

    def clear_help(self, _msg: dict[str, Any] | None = None) -> None:
        with self.lock:
            self.help_pending = False

    def help_state(self) -> str:
        """ "none", "waiting" (the call is still in the outbox: nobody knows of it yet) or "confirmed" (ingest has
        committed it, and with it the dashboard alert: its end-to-end acknowledgement removed it from the outbox)."""
        if not self.help_pending:
            return "none"
        seq = self.help_seq
        if seq is None:
            return "confirmed"
        waiting = self.runtime.outbox.pending(after_seq=seq - 1, limit=1)
        if waiting and waiting[0].seq == seq:
            return "waiting"
        self.help_seq = None  # confirmed once is confirmed: the outbox never holds it again
        return "confirmed"

    def health(self) -> dict[str, Any]:
        day, _ = self.today()
        schedule = self.local.schedule
        state = "none" if schedule is None else ("ok" if schedule["date"] == day.isoformat() else "stale")
        return {"schedule": state, "help": "pending" if self.help_pending else "none"}

    def today(self) -> tuple[dt.date, str]:
        return local_now(self.now(), self.config.timezone, self.day_starts)

    def language(self) -> str:
        lang = self.local.settings.get("language")
        return lang if lang in LANGUAGES else self.settings.language

    def view(self) -> dict[str, Any]:
        day, hhmm = self.today()
        items = todays_items(self.local.schedule, day)
        rooms = self.local.room_list()
        upcoming = [self.place(i, rooms) for i in open_items(items, hhmm)]
        return {
            "day": day.isoformat(),
            "time": hhmm,
            "language": self.language(),
            "items": upcoming,
            "rooms": [r for r in rooms if r["level"] in ("busy", "full")],
            "camera": self.frame_source is not None,
            "help_pending": self.help_pending,
            "help": self.help_state(),
            "online": self.runtime.link.connected.is_set(),
        }

    @staticmethod
    def place(item: dict[str, Any], rooms: list[dict[str, Any]]) -> dict[str, Any]:
        """A schedule item with where it is, for every room (quiet ones too): name, English name, floor, level."""
        room = next((r for r in rooms if r["room"] == item["room"]), None)
        if room is None:  # no room state yet: no name to show (visitors never see room ids)
            return {**item, "level": "ok", "room_name": None, "room_name_en": None, "floor": None}
        where = {"room_name": room["name"], "room_name_en": room["name_en"], "floor": room["floor"]}
        return {**item, "level": room["level"], **where}

    def checkin(self, body: Any) -> dict[str, Any]:
        day, hhmm = self.today()
        items = todays_items(self.local.schedule, day)
        req = parse_checkin(body, items)
        if req.member and req.activity:
            with self.lock:
                earlier = self.local.already(day, req.member, req.activity)
                if earlier is not None:
                    return {"status": "duplicate", "at": earlier}
                event = self.runtime.emit(partial(Checkin, **req.fields()))
                self.local.remember(day, req.member, req.activity, hhmm)
        else:
            event = self.runtime.emit(partial(Checkin, **req.fields()))
        logger.info("checkin %s seq %d: %s %d+%d", event.id, event.seq, req.purpose, req.adults, req.children)
        return {"status": "ok", "at": hhmm, "seq": event.seq}

    def call_help(self) -> dict[str, Any]:
        now = self.now()
        _, hhmm = self.today()
        with self.lock:
            if self.help_pending and self.help_at and (now - self.help_at).total_seconds() < HELP_REPEAT_S:
                return {"status": "already", "at": format_ts(self.help_at), "help": self.help_state()}
            event = self.runtime.emit(Help)
            self.help_at, self.help_pending, self.help_seq = now, True, event.seq
        logger.warning("help requested (event %s)", event.id)
        # "sent" means taken into the outbox; `help` says whether the server has confirmed it (see help_state).
        return {"status": "sent", "at": hhmm, "help": self.help_state()}

    def scan(self) -> dict[str, Any]:
        if self.frame_source is None:
            raise ValidationError("this kiosk has no camera", "camera")
        text = decode_qr(self.frame_source())
        if text is None:
            return {"member": None}
        try:
            return {"member": normalize_member(text)}
        except ValidationError:
            return {"member": None, "invalid": True}


def create_app(
    config: KioskConfig, runtime: EdgeRuntime | None = None, test_config: dict[str, Any] | None = None
) -> Flask:
    """test_config: Flask settings plus `now` (callable -> UTC datetime), `frame_source`, and overrides of
    [kiosk] idle_seconds / warn_seconds / success_seconds / sound."""
    test_config = dict(test_config or {})
    now = test_config.pop("now", utcnow)
    frame_source = test_config.pop("frame_source", None)
    overrides = {
        k: test_config.pop(k)
        for k in ("idle_seconds", "warn_seconds", "success_seconds", "sound")
        if k in test_config
    }
    app = Flask(__name__, template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"))
    app.config.update(JSON_AS_ASCII=False, SEND_FILE_MAX_AGE_DEFAULT=0, **test_config)
    app.json.ensure_ascii = False
    kiosk = Kiosk(config, runtime, now, frame_source, overrides)
    app.extensions["kiosk"] = kiosk
    install_guard(app, kiosk.guard)
    app.register_blueprint(staff_bp)

    @app.get("/")
    def index():
        s = kiosk.settings
        client = {
            "language": kiosk.language(),
            "idle_seconds": s.idle_seconds,
            "warn_seconds": s.warn_seconds,
            "success_seconds": s.success_seconds,
            "sound": s.sound,
            "retention_days": s.member_retention_days,
            "center": {"zh-CN": s.center_name, "en": s.center_name_en},
            "scheduled": list(SCHEDULED),
            "csrf": kiosk.guard.token,
        }
        return render_template("index.html", client=client, catalogs=kiosk.catalogs, lang=kiosk.language())

    @app.get("/api/state")
    def state():
        return jsonify(kiosk.view())

    @app.get("/healthz")
    def healthz():
        problems = kiosk.runtime.problems()
        body = {"status": "unavailable" if problems else "ok", "queue": kiosk.runtime.outbox.queue}
        if problems:
            body["detail"] = "; ".join(problems)
        return jsonify(body), 503 if problems else 200

    @app.post("/api/checkin")
    def checkin():
        return jsonify(kiosk.checkin(request.get_json(silent=True)))

    @app.post("/api/help")
    def help_request():
        return jsonify(kiosk.call_help())

    @app.post("/api/scan")
    def scan():
        return jsonify(kiosk.scan())

    @app.errorhandler(ValidationError)
    def invalid(exc: ValidationError):
        return jsonify({"error": "invalid", "field": exc.field, "detail": str(exc)}), 422

    @app.errorhandler(OutboxFull)
    def outbox_full(exc: OutboxFull):
        # The visitor is asked to see the service desk (kiosk.js); staff see `health.outbox: "full"`, and the
        # runtime logs the refusals once a minute.
        return jsonify({"error": "outbox_full", "detail": "the kiosk cannot store more check-ins now"}), 503

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return jsonify({"error": exc.name.lower().replace(" ", "_"), "detail": exc.description}), exc.code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        logger.exception("unexpected error")
        return jsonify({"error": "internal", "detail": "internal error"}), 500

    return app
