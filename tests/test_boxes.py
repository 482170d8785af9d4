"""Each box installs only what it needs (pyproject.toml's extras): one wheel is built from this tree, installed (not
editable) into a fresh venv per box, and each box then runs its own `footfall` command against a real Mosquitto.

Sizes are measured as a new box would have them: the venv's site-packages (pyc files included) less pip and
setuptools, which these venvs do not even get (`venv --without-pip`; the test's own pip installs into them).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from footfall.counter.simulate import VisitorModel, expected_counts
from footfall.demo.broker import free_port
from footfall.kiosk.pin import hash_pin
from tests.conftest import ROOT, footfall_env, wait_server_online, wait_until

pytestmark = pytest.mark.integration

MB = 1024 * 1024
OPENCV = {
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
}
INSTALLER = {"pip", "setuptools", "_distutils_hack", "pkg_resources", "distutils-precedence.pth"}
APP_NAMES = {"server", "kiosk", "counter", "demo"}


@dataclass(frozen=True)
class Box:
    extra: str
    limit_mb: int
    absent: frozenset[str]  # distributions that must not be installed
    modules: tuple[str, ...]  # packages whose every module must import with only this extra
    skip: tuple[str, ...] = ()  # modules of those packages that belong to another extra


BOXES = {
    "beam": Box(
        "beam",
        25,
        frozenset(OPENCV | {"numpy", "flask", "gevent"}),
        ("footfall", "footfall.counter"),
        skip=("footfall.counter.camera", "footfall.counter.camera_app"),  # the [camera] extra
    ),
    "kiosk": Box("kiosk", 40, frozenset(OPENCV), ("footfall", "footfall.kiosk")),
    "server": Box(
        "server",
        90,
        frozenset(OPENCV | {"gpiozero", "amqtt"}),
        ("footfall", "footfall.server"),
        # the [district] and [postgresql] extras
        skip=("footfall.server.district_", "footfall.server.store_pg"),
    ),
}

# Run inside a box's venv: what is installed, and which modules fail to import.
PROBE = """
import importlib, json, sys
from importlib.metadata import distributions
from pathlib import Path
packages, skip = json.loads(sys.argv[1]), tuple(json.loads(sys.argv[2]))
failed = {}
for name in packages:
    (root,) = importlib.import_module(name).__path__
    for path in sorted(Path(root).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        module = ".".join([name, *parts]).removesuffix(".__init__")
        if module.startswith(skip):
            continue
        try:
            importlib.import_module(module)
        except Exception as exc:
            failed[module] = repr(exc)
dists = sorted({d.metadata["Name"].lower().replace("_", "-") for d in distributions()})
print(json.dumps({"failed": failed, "dists": dists, "site": [p for p in sys.path if p.endswith("site-packages")]}))
"""


def site_packages_bytes(site: Path) -> int:
    """Bytes under site-packages, not counting the installer's own packages."""
    total = 0
    for entry in site.iterdir():
        if entry.name in INSTALLER or entry.name.split("-")[0] in INSTALLER:
            continue
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        total += sum(p.lstat().st_size for p in files)
    return total


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """One wheel of this tree (as it is, committed or not), built once for every box."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".git", ".venv", "artifacts", "build", "*.egg-info", "__pycache__"),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    (built,) = (work / "dist").glob("footfall-*.whl")
    return built


@pytest.fixture(scope="module")
def venvs(wheel, tmp_path_factory) -> dict[str, Path]:
    """A fresh venv per box with `footfall[box]` installed from the wheel (pip's cache makes this quick)."""
    made = {}
    for name, box in BOXES.items():
        venv = tmp_path_factory.mktemp(f"box-{name}") / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q"]
            + [f"footfall[{box.extra}] @ {wheel.as_uri()}"],
            check=True,
            capture_output=True,
        )
        made[name] = venv
    return made


@pytest.mark.parametrize("name", sorted(BOXES))
def test_box_installs_only_what_it_needs(venvs, name):
    box, venv = BOXES[name], venvs[name]
    skip = box.skip + tuple(f"footfall.{app}" for app in APP_NAMES if f"footfall.{app}" not in box.modules)
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-c", PROBE, json.dumps(box.modules), json.dumps(skip)],
        capture_output=True,
        text=True,
        cwd=venv,  # not this checkout, whose footfall/ would shadow the installed one
    )
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert found["failed"] == {}, f"[{name}] modules that import something the extra does not install"
    assert set(found["dists"]) & box.absent == set()
    (site,) = map(Path, found["site"])
    top = {p.name.removesuffix(".py") for p in site.iterdir()}
    assert top & APP_NAMES == set(), "an app installed under its bare name, not under footfall."
    size = site_packages_bytes(site)
    print(f"box_{name}_site_packages_mb: {size / MB:.1f} (limit {box.limit_mb})")
    assert size <= box.limit_mb * MB


def run_footfall(venv: Path, *args: str, env: dict | None = None, timeout: float = 60):
    return subprocess.run(
        [str(venv / "bin" / "footfall"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=venv,
    )


def test_command_of_a_missing_extra_says_which_extra_to_install(venvs, site_file, tmp_path):
    counter_toml = tmp_path / "counter.toml"
    counter_toml.write_text('[device]\nid = "door-main"\nsite = "dongsi"\n\n[mqtt]\nhost = "127.0.0.1"\n')
    for box, args, extra in [
        ("beam", ["server", "-c", str(site_file)], "server"),
        ("kiosk", ["report", "daily", "-c", str(site_file)], "server"),
        ("server", ["counter", "-c", str(counter_toml)], "beam"),
        ("beam", ["demo"], "demo"),
    ]:
        done = run_footfall(venvs[box], *args)
        assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert f"pip install 'footfall[{extra}]'" in done.stderr


def test_beam_box_counts_simulated_people_and_exits_after_count(venvs, broker, site_file, procs, tmp_path):
    """`footfall counter --simulate --count N` on the beam box: once ingest (the server's own venv) has confirmed
    the N people's crossings, it exits by itself."""
    people, seed, rate = 4, 11, 4.0
    truth = expected_counts(VisitorModel(seed, mean_interval=1.0 / rate).edges(people))
    env = footfall_env(broker)
    procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="ingest")
    wait_server_online(broker)
    config = tmp_path / "counter.toml"
    config.write_text(f'[device]\nid = "door-main"\nsite = "dongsi"\ndata_dir = "{tmp_path / "pi"}"\n')
    done = run_footfall(
        venvs["beam"],
        *("counter", "-c", str(config), "--simulate", "--count", str(people)),
        *("--seed", str(seed), "--rate", str(rate)),
        env=env,
    )
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "data" / "footfall.db") as db:
        stored = dict(db.execute("select direction, sum(count) from events group by direction").fetchall())
    assert (stored.get("in", 0), stored.get("out", 0)) == truth


def serve_until_healthy(venv: Path, args: list[str], env: dict, url: str) -> dict:
    proc = subprocess.Popen(
        [str(venv / "bin" / "footfall"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=venv,
    )

    def fetch():
        assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:  # e.g. 503 "degraded" while ingest starts: it answers
            return json.loads(exc.read())
        except OSError:
            return None

    try:
        return wait_until(fetch, 30, interval=0.2, message=url)
    finally:
        proc.terminate()
        assert proc.wait(15) == 0


def test_kiosk_box_serves_its_ui(venvs, broker, tmp_path):
    port = free_port()
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f'[device]\nid = "kiosk-hall"\nsite = "dongsi"\n[kiosk]\nstaff_pin_hash = "{hash_pin("7305")}"\n'
        f'data_dir = "{tmp_path / "kiosk"}"\nlisten = "127.0.0.1:{port}"\n'
    )
    state = serve_until_healthy(
        venvs["kiosk"],
        ["kiosk", "-c", str(config)],
        footfall_env(broker),
        f"http://127.0.0.1:{port}/api/state",
    )
    assert state["language"] == "zh-CN"


def test_server_box_runs_ingest_and_web(venvs, broker, site_file):
    port = free_port()
    env = footfall_env(broker, FOOTFALL_SERVER_LISTEN=f"127.0.0.1:{port}")
    health = serve_until_healthy(
        venvs["server"], ["server", "-c", str(site_file)], env, f"http://127.0.0.1:{port}/api/v1/healthz"
    )
    assert "status" in health
