"""footfall.files.write_private: secret files are 0600 from their first byte and replaced atomically."""

from __future__ import annotations

import os
import re
import stat
import threading
from pathlib import Path

import pytest

from footfall.files import write_private
from tests.conftest import ROOT


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_is_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)  # a umask of 0 would leave a plain open() at 0666
    try:
        write_private(tmp_path / "accounts.json", "{}\n")
    finally:
        os.umask(old)
    assert mode(tmp_path / "accounts.json") == 0o600
    assert (tmp_path / "accounts.json").read_text() == "{}\n"


def test_replacing_a_readable_file_makes_it_private_and_a_mode_can_be_given(tmp_path):
    path = tmp_path / "kiosk.toml"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "新的 PIN 哈希")
    assert (mode(path), path.read_text(encoding="utf-8")) == (0o600, "新的 PIN 哈希")
    write_private(tmp_path / "passwd", "u:h\n", mode=0o640)  # Mosquitto's group reads it
    assert mode(tmp_path / "passwd") == 0o640


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "accounts.json"
    write_private(path, "the old accounts\n")
    with pytest.raises(UnicodeEncodeError):
        write_private(path, "half written \ud800 then fails")  # a lone surrogate cannot be encoded
    assert path.read_text() == "the old accounts\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accounts.json"]


def test_a_reader_sees_the_old_text_or_the_new_never_part_of_one(tmp_path):
    path = tmp_path / "secret"
    texts = ["a" * 200_000, "b" * 300_000]
    write_private(path, texts[0])
    seen: set[str] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.add(path.read_text())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(200):
            write_private(path, texts[i % 2])
    finally:
        done.set()
        reader.join()
    assert seen <= set(texts) and seen  # never a truncated or mixed file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]


def test_the_secret_writers_share_the_one_function():
    """MQTT accounts, district accounts and the kiosk's PIN once had three copies of this code."""
    for name in ("server/mqtt_accounts.py", "server/district.py", "kiosk/pin.py"):
        source = (ROOT / name).read_text()
        assert re.search(r"from footfall.files import .*\bwrite_private\b", source), name
        assert "os.replace(" not in source and "os.O_CREAT" not in source, name
