"""Half-open connections against the production web server (prints `name: value` lines; about 60 s).

Runs `footfall server --only web` (gevent, server/web/httpserver.py) against a real Mosquitto, with the file
limit of deploy/systemd/footfall-web.service (LimitNOFILE), and times `GET /healthz` on a fresh connection:

- healthz_ms_p50_idle, healthz_ms_max_idle: with nothing else going on (the baseline);
- healthz_ms_p50_halfopen, healthz_ms_max_halfopen: while 1,100 connections that never finish their headers are
  held open for 30 s (each one the server closes is reopened at once, as a slowloris does);
- ratio_p50: halfopen / idle;
- healthz_failures_halfopen: requests that got no answer within 1 s (0 expected);
- halfopen_reopened: how many the header timeout closed in those 30 s (0 would mean nothing closes them);
- before_healthz_failures: the same attack on the server as it was before #11 (gevent's plain WSGIServer, the
  default soft file limit of 1024), attacked for 10 s: requests without an answer within 1 s.
"""

from __future__ import annotations

import http.client
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from footfall.demo.broker import LocalBroker, free_port, wait_for_port  # noqa: E402

HALF_OPEN = b"GET /api/v1/rooms HTTP/1.1\r\nHost: footfall\r\n"
CONNECTIONS = 1100
HOLD_S = 30
BEFORE_HOLD_S = 10  # long enough to show it: the server as it was never recovers while the attack lasts
# The web process as it was before #11: gevent's plain WSGIServer, no timeouts, no cap.
BEFORE = textwrap.dedent(
    """
    import sys
    from gevent import monkey
    monkey.patch_all()
    from gevent.pywsgi import WSGIServer
    from footfall.server.web import create_app
    from footfall.server.web.live import LocalHub
    from footfall.site import load_site
    site = load_site(sys.argv[1])
    WSGIServer(site.listen, create_app(site, None, LocalHub()), log=None).serve_forever()
    """
)


def unit_nofile() -> int:
    text = (ROOT / "deploy" / "systemd" / "footfall-web.service").read_text()
    return int(re.search(r"^LimitNOFILE=(\d+)$", text, re.M).group(1))


def healthz_ms(port: int) -> float | None:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", "/healthz")
        conn.getresponse().read()
    except OSError:
        return None
    finally:
        conn.close()
    return (time.perf_counter() - started) * 1000


def open_half(port: int) -> socket.socket | None:
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        sock.sendall(HALF_OPEN)
        return sock
    except OSError:
        return None


def closed(sock: socket.socket) -> bool:
    sock.settimeout(0)
    try:
        sock.recv(4096)  # b"" (closed) or a 408: either way the server ended this half request
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def attack(port: int, hold_s: float) -> tuple[list[float | None], int]:
    """Hold CONNECTIONS half-open connections for `hold_s` seconds, timing /healthz twice a second."""
    socks = [open_half(port) for _ in range(CONNECTIONS)]
    samples: list[float | None] = []
    reopened = 0
    deadline = time.monotonic() + hold_s
    while time.monotonic() < deadline:
        samples.append(healthz_ms(port))
        for n, sock in enumerate(socks):
            if sock is None or closed(sock):
                if sock is not None:
                    sock.close()
                    reopened += 1
                socks[n] = open_half(port)
        time.sleep(0.5)
    for sock in socks:
        if sock is not None:
            sock.close()
    return samples, reopened


def start(cmd: list[str], env: dict[str, str], nofile: int, log) -> subprocess.Popen:
    def limit() -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(nofile, hard), hard))

    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit)


def site_file(directory: Path, port: int) -> Path:
    text = (ROOT / "deploy" / "examples" / "site.toml").read_text()
    text = text.replace('data_dir = "data"', f'data_dir = "{directory / "data"}"')
    text = text.replace('listen = "127.0.0.1:8000"', f'listen = "127.0.0.1:{port}"')
    path = directory / f"site-{port}.toml"
    path.write_text(text)
    return path


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(4 * CONNECTIONS, hard), hard))
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        broker = LocalBroker(tmp_path / "broker", kind="mosquitto").start()
        env = {
            "FOOTFALL_MQTT_HOST": "127.0.0.1",
            "FOOTFALL_MQTT_PORT": str(broker.port),
            "PATH": "/usr/bin:/bin",
        }
        log = open(tmp_path / "web.log", "ab")  # noqa: SIM115 - closed below
        try:
            port = free_port()
            cmd = [
                sys.executable,
                "-m",
                "footfall.cli",
                "server",
                "-c",
                str(site_file(tmp_path, port)),
                "--only",
                "web",
            ]
            proc = start(cmd, env, unit_nofile(), log)
            try:
                assert wait_for_port(port, timeout=20)
                idle = [healthz_ms(port) for _ in range(40)]
                idle_ok = [v for v in idle if v is not None]
                samples, reopened = attack(port, HOLD_S)
            finally:
                stop(proc)
            under = [v for v in samples if v is not None]
            before_port = free_port()
            before = start(
                [sys.executable, "-c", BEFORE, str(site_file(tmp_path, before_port))], env, 1024, log
            )
            try:
                assert wait_for_port(before_port, timeout=20)
                before_samples, _ = attack(before_port, BEFORE_HOLD_S)
            finally:
                stop(before)
        finally:
            log.close()
            broker.stop()
    p50_idle, p50_under = statistics.median(idle_ok), statistics.median(under) if under else float("nan")
    print(f"healthz_ms_p50_idle: {p50_idle:.2f}")
    print(f"healthz_ms_max_idle: {max(idle_ok):.2f}")
    print(f"healthz_ms_p50_halfopen: {p50_under:.2f}")
    print(f"healthz_ms_max_halfopen: {max(under) if under else float('nan'):.2f}")
    print(f"ratio_p50: {p50_under / p50_idle:.2f}")
    print(f"healthz_samples_halfopen: {len(samples)}")
    print(f"healthz_failures_halfopen: {samples.count(None)}")
    print(f"halfopen_reopened: {reopened}")
    print(f"before_healthz_samples: {len(before_samples)}")
    print(f"before_healthz_failures: {before_samples.count(None)}")


if __name__ == "__main__":
    run()
