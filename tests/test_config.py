"""Configuration: validated once, errors name the file and the key, and the command exits non-zero."""

from __future__ import annotations

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
    assert load_site(path, env={"FOOTFALL_MQTT_PORT": "18830"}).mqtt["port"] == 18830
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
