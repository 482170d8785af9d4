"""Without Chromium the browser tests fail saying how to get it (Debian's package), never `playwright install`."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

# A browser test as the suite writes them, run where PATH has no chromium.
BROWSER_TEST = """
from playwright.sync_api import sync_playwright

from tests.browser import launch_chromium


def test_opens_a_page():
    with sync_playwright() as p:
        browser = launch_chromium(p)
        browser.new_page().goto("about:blank")
"""


def run_without_chromium(tmp_path, test_file):
    env = {**os.environ, "PATH": str(tmp_path / "empty-bin"), "PYTHONPATH": str(ROOT)}
    (tmp_path / "empty-bin").mkdir()
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            test_file,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_browser_test_without_chromium_fails_with_the_apt_get_line(tmp_path):
    test_file = tmp_path / "test_needs_chromium.py"
    test_file.write_text(BROWSER_TEST)
    result = run_without_chromium(tmp_path, str(test_file))
    out = result.stdout + result.stderr
    assert result.returncode == 1, out  # failed, not skipped or passed
    assert "1 failed" in out, out
    assert "apt-get install chromium" in out, out
    assert "playwright install" not in out, out
    assert "Traceback" not in out, out  # one clear line, not a stack trace


def test_the_suite_s_browser_tests_use_the_helper_only():
    """Playwright's own launch without Debian's path would say `playwright install`: no test calls it directly."""
    for path in sorted((ROOT / "tests").glob("*.py")):
        if path.name in ("browser.py", "test_browser_helper.py"):
            continue
        assert "chromium.launch(" not in path.read_text(), f"{path.name}: launch through tests.browser"
