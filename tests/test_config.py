"""Configuration: validated once, errors name the file and the key, and the command exits non-zero."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from footfall.errors import ConfigError
from footfall.site import load_site
from tests.conftest import EXAMPLE_SITE


def test_example_site_is_the_reference_center(tmp_path):
    site = load_site(EXAMPLE_SITE)
    assert len(site.rooms) == 9 and all(room.capacity > 0 for room in site.rooms)
    assert site.doors_by_device["door-main"].outside == "outdoors"
    assert {d.inside for d in site.doors if d.outside == "hall"} == {r.id for r in site.rooms} - {"hall"}
    assert [d.id for d in site.devices if d.kind == "kiosk"] == ["kiosk-hall"]
    assert (site.rooms_by_id["e-learning"].floor, site.rooms_by_id["hall"].floor) == (
        2,
        1,
    )  # "请到二楼电教室"
    assert load_site(write(tmp_path, GOOD)).rooms[0].floor is None  # the key is optional


def write(tmp_path, text: str):
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


GOOD = '[site]\nid = "s1"\nname = "S"\n[[rooms]]\nid = "hall"\nname = "Hall"\ncapacity = 10\n'


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (GOOD.replace('id = "s1"', 'id = "S 1"'), "site.id", "must match"),
        (GOOD + "[mqtt]\nport = 70000\n", "mqtt.port", "TCP port"),
        (GOOD + '[mqtt]\nport = "1883"\n', "mqtt.port", "an integer"),
        (GOOD + "[mqtt]\nprot = 1883\n", "mqtt.prot", "unknown key"),
        (GOOD + '[server]\nlisten = "8000"\n', "server.listen", "host:port"),
        (
            GOOD.replace('name = "S"', 'name = "S"\ntimezone = "Mars/Base"'),
            "site.timezone",
            "unknown time zone",
        ),
        (GOOD.replace("capacity = 10", "capacity = -1"), "rooms[0].capacity", "0 or more"),
        (GOOD + "floor = 0\n", "rooms[0].floor", "ground floor"),
        (GOOD + 'floor = "2F"\n', "rooms[0].floor", "an integer"),
        (
            GOOD
            + '[[doors]]\nid = "d"\ndevice = "c"\ninside = "hall"\noutside = "yard"\n[[devices]]\nid = "c"\n'
            'kind = "counter"\n',
            "doors[0].outside",
            "no room 'yard'",
        ),
        (
            GOOD + '[[doors]]\nid = "d"\ndevice = "nope"\ninside = "hall"\noutside = "outdoors"\n',
            "doors[0].device",
            "no device",
        ),
        ('[site]\nname = "S"\n', "site.id", "is required"),
        (GOOD + "[bogus]\n", "[bogus]", "unknown section"),
    ],
)
def test_errors_name_file_and_key(tmp_path, text, key, problem):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_site(path)
    assert info.value.key == key and problem in info.value.problem and info.value.path == str(path)


def test_environment_overrides(tmp_path):
    path = write(tmp_path, GOOD)
    assert load_site(path, env={"FOOTFALL_MQTT_PORT": "18830"}).mqtt.port == 18830
    with pytest.raises(ConfigError) as info:
        load_site(path, env={"FOOTFALL_MQTT_PORT": "many"})
    assert "FOOTFALL_MQTT_PORT" in info.value.key


def test_bad_config_exits_non_zero_naming_file_and_key(tmp_path):
    path = write(tmp_path, GOOD + "[mqtt]\nport = 0\n")
    for args in (["check-config"], ["server"], ["token", "create", "--role", "viewer"]):
        result = subprocess.run(
            [sys.executable, "-m", "footfall.cli", *args, "-c", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode != 0
        assert f"{path}: mqtt.port: must be a TCP port" in result.stderr
        assert "Traceback" not in result.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "footfall.cli", "check-config", "-c", str(tmp_path / "no.toml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode != 0 and "no.toml: file not found" in missing.stderr


def test_check_config_refuses_a_site_with_no_rooms(tmp_path):
    path = write(tmp_path, '[site]\nid = "s1"\nname = "S"\n')
    result = subprocess.run(
        [sys.executable, "-m", "footfall.cli", "check-config", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"{path}: rooms: a site needs at least one [[rooms]] table" in result.stderr


def test_counter_config_errors(tmp_path):
    from footfall.counter.config import load_counter_config

    path = tmp_path / "counter.toml"
    path.write_text('[device]\nid = "door-main"\nsite = "s"\nsensor = "camera"\n[mqtt]\nhost = "pi-server"\n')
    with pytest.raises(ConfigError) as info:
        load_counter_config(path)
    assert info.value.key == "camera.line"
    path.write_text(
        '[device]\nid = "door-main"\nsite = "s"\n[mqtt]\nhost = "pi-server"\n[beam]\ndebounce = "fast"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_counter_config(path)
    assert info.value.key == "beam.debounce"


def typed_sections():
    from footfall.config import MqttSettings, OutboxSettings
    from footfall.counter.config import (
        COUNTER_SCHEMA,
        BeamSettings,
        CameraSettings,
        CounterDevice,
        LedSettings,
    )
    from footfall.kiosk.config import KIOSK_SCHEMA, KioskDevice, KioskSettings
    from footfall.site import SITE_SCHEMA, AlertSettings, ServerSettings, SiteMqttSettings, Webhook

    return [
        (SITE_SCHEMA, "mqtt", SiteMqttSettings),
        (SITE_SCHEMA, "server", ServerSettings),
        (SITE_SCHEMA, "alerts", AlertSettings),
        (SITE_SCHEMA, "webhooks", Webhook),
        (KIOSK_SCHEMA, "device", KioskDevice),
        (KIOSK_SCHEMA, "mqtt", MqttSettings),
        (KIOSK_SCHEMA, "kiosk", KioskSettings),
        (KIOSK_SCHEMA, "outbox", OutboxSettings),
        (COUNTER_SCHEMA, "device", CounterDevice),
        (COUNTER_SCHEMA, "mqtt", MqttSettings),
        (COUNTER_SCHEMA, "outbox", OutboxSettings),
        (COUNTER_SCHEMA, "beam", BeamSettings),
        (COUNTER_SCHEMA, "led", LedSettings),
        (COUNTER_SCHEMA, "camera", CameraSettings),
    ]


def test_each_typed_section_names_exactly_its_schema_keys():
    """A key the schema validates but its dataclass lacks (or the reverse) would be lost or unset at load."""
    for schema, section, cls in typed_sections():
        names = {f.name for f in dataclasses.fields(cls)}
        assert names == set(schema[section]), (section, cls.__name__)


def test_settings_read_as_typed_attributes_not_string_keys(tmp_path):
    from footfall.counter.config import load_counter_config
    from footfall.kiosk.config import load_kiosk_config
    from tests.conftest import ROOT

    site = load_site(EXAMPLE_SITE, env={"FOOTFALL_MQTT_PORT": "18830", "FOOTFALL_SERVER_BATCH_MAX": "7"})
    assert (site.mqtt.port, site.server.batch_max, site.alerts.device_offline_s) == (18830, 7, 300)
    kiosk = load_kiosk_config(ROOT / "deploy/examples/kiosk.toml", env={})
    counter = load_counter_config(
        ROOT / "deploy/examples/counter.toml", env={"FOOTFALL_MQTT_HOST": "10.0.0.2"}
    )
    assert (kiosk.kiosk.idle_seconds, kiosk.outbox.window, counter.beam.pin_a) == (60, 1000, 17)
    assert counter.mqtt.host == "10.0.0.2" and isinstance(kiosk.kiosk.allowed_hosts, tuple)
    for section in (site.mqtt, site.server, site.alerts, kiosk.kiosk, counter.device, counter.camera):
        with pytest.raises(TypeError):
            section["port"]  # the old dict access fails loudly instead of reading a stale copy
        with pytest.raises(dataclasses.FrozenInstanceError):
            section.port = 1  # settings are read-only: change them in the file


def test_a_bad_typed_value_still_names_its_key(tmp_path):
    path = write(tmp_path, GOOD + '[server]\nbatch_max = "many"\n')
    with pytest.raises(ConfigError, match=r"server\.batch_max.*must be an integer"):
        load_site(path)
    path = write(tmp_path, GOOD + "[alerts]\nretry_max_s = 0\n")
    with pytest.raises(ConfigError, match=r"alerts\.retry_max_s.*greater than 0"):
        load_site(path)
    with pytest.raises(ConfigError, match=r"mqtt\.port \(from \$FOOTFALL_MQTT_PORT\)"):
        load_site(write(tmp_path, GOOD), env={"FOOTFALL_MQTT_PORT": "eighty"})
