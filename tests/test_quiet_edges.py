"""Edges that never fail quietly, device side: each mistake is one line on stderr and a non-zero exit of the real
`footfall counter` command, never a traceback, never a process that runs on counting nothing."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from footfall.outbox import Outbox

DEVICE = '[device]\nid = "door-main"\nsite = "dongsi"\nclock = "synced"\ndata_dir = "{data}"\n'
MQTT = '[mqtt]\nhost = "127.0.0.1"\nport = 1\n'


def run_counter(
    tmp_path,
    text: str,
    env: dict[str, str] | None = None,
    command: tuple[str, ...] = ("counter", "--simulate"),
) -> subprocess.CompletedProcess:
    path = tmp_path / f"{command[0]}.toml"
    path.write_text(text)
    base = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    return subprocess.run(
        [sys.executable, "-m", "footfall.cli", command[0], "-c", str(path), *command[1:]],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("mqtt", "env", "expected"),
    [
        ('[mqtt]\nhost = ""\n', {}, "mqtt.host: must not be empty"),
        ("[mqtt]\nport = 1883\n", {}, "mqtt.host: is required"),
        ("", {}, "mqtt.host: is required"),
        ('[mqtt]\nhost = "192.168.1.10"\n', {"FOOTFALL_MQTT_HOST": ""}, "mqtt.host: must not be empty"),
    ],
)
def test_empty_or_missing_broker_host(tmp_path, mqtt, env, expected):
    line = one_line_error(run_counter(tmp_path, DEVICE.format(data=tmp_path / "pi") + mqtt, env))
    assert str(tmp_path / "counter.toml") in line and expected in line


@pytest.mark.parametrize(
    ("mqtt", "expected"),
    [('[mqtt]\nhost = ""\n', "mqtt.host: must not be empty"), ("", "mqtt.host: is required")],
)
def test_the_kiosk_has_no_silent_broker_host_either(tmp_path, mqtt, expected):
    kiosk = f'[device]\nid = "kiosk-hall"\nsite = "dongsi"\n[kiosk]\ndata_dir = "{tmp_path / "k"}"\n'
    line = one_line_error(run_counter(tmp_path, kiosk + mqtt, command=("kiosk",)))
    assert str(tmp_path / "kiosk.toml") in line and expected in line


@pytest.mark.parametrize(
    ("beam", "key", "expected"),
    [
        ("[beam]\npin_a = 99\n", "beam.pin_a", "not a GPIO pin"),
        ("[beam]\npin_b = -1\n", "beam.pin_b", "not a GPIO pin"),
        ('[beam]\npin_a = "GPIO40"\n', "beam.pin_a", "not a GPIO pin"),
        ("[beam]\npin_a = 22\npin_b = 22\n", "beam.pin_b", "already used by beam.pin_a"),
        ('[beam]\npin_a = 17\npin_b = "GPIO17"\n', "beam.pin_b", "already used by beam.pin_a"),
        ("[led]\npin = 27\n", "led.pin", "already used by beam.pin_b"),
    ],
)
def test_bad_pins(tmp_path, beam, key, expected):
    line = one_line_error(run_counter(tmp_path, DEVICE.format(data=tmp_path / "pi") + MQTT + beam))
    assert f"{key}:" in line and expected in line


def test_unwritable_data_folder(tmp_path):
    if os.geteuid() == 0:
        folder = "/sys"  # root may write anywhere else; sysfs takes no files, even from root
    else:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o500)
    line = one_line_error(run_counter(tmp_path, DEVICE.format(data=folder) + MQTT))
    assert str(folder) in line and "writable" in line


def test_data_folder_that_cannot_be_created(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    line = one_line_error(run_counter(tmp_path, DEVICE.format(data=tmp_path / "a-file" / "pi") + MQTT))
    assert "cannot create the data folder" in line and str(tmp_path / "a-file") in line


def filled_outbox(path, n: int = 150) -> None:
    outbox = Outbox(path)
    for i in range(n):
        outbox.append(lambda seq, i=i: (f"id-{i}", "t", b'{"ts":"2026-11-28T01:30:12.345Z"}'))
    outbox.close()


@pytest.mark.parametrize("damage", ["garbled", "half"])
def test_damaged_outbox_is_named(tmp_path, damage):
    pi = tmp_path / "pi"
    path = pi / "outbox-door-main.db"
    filled_outbox(path)
    data = path.read_bytes()
    if damage == "garbled":
        path.write_bytes(data[:100] + bytes(b ^ 0x5A for b in data[100:4096]) + data[4096:])
    else:
        path.write_bytes(data[: len(data) // 2])
    line = one_line_error(run_counter(tmp_path, DEVICE.format(data=pi) + MQTT))
    assert f"outbox {path} is damaged" in line and "move it aside" in line


def test_emptied_outbox_is_reported_and_starts_over(tmp_path, caplog):
    path = tmp_path / "outbox.db"
    filled_outbox(path)
    path.write_bytes(b"")  # truncated to 0 bytes while the counter was stopped
    with caplog.at_level("ERROR"):
        outbox = Outbox(path)
    assert outbox.emptied and outbox.last_seq == 0 and outbox.queue == 0
    assert any(str(path) in r.message and "events it held are lost" in r.message for r in caplog.records)
    outbox.close()
    with sqlite3.connect(path) as conn:  # a real outbox again
        assert conn.execute("select count(*) from outbox").fetchone()[0] == 0
    caplog.clear()
    with caplog.at_level("ERROR"):
        assert not Outbox(path).emptied  # reported once, not at every start
    assert not caplog.records
