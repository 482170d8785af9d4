"""The one way the browser tests start Chromium: Debian's own build, found on PATH.

Playwright's downloaded browsers cannot be fetched on Footfall's machines, and its own error for a missing
browser says to run `playwright install`. So the tests look for Debian's chromium first and, when it is not
there, fail with the line that gets it.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
MISSING = (
    "Chromium is not installed (no `chromium` on PATH): the browser tests need Debian's build. "
    "Install it with `sudo apt-get install chromium fonts-noto-cjk` (`make test` does this when it may)."
)


def chromium_path() -> str:
    """The chromium executable, or a test failure (not an error with a stack trace) saying how to install it."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(MISSING, pytrace=False)
    return path


def launch_chromium(playwright: Any, extra_args: tuple[str, ...] = ()) -> Any:
    """`playwright.chromium.launch` with Debian's chromium and the flags every browser test uses."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=[*ARGS, *extra_args])
