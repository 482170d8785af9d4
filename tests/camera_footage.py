"""Where the camera tests find the real footage, and a clear failure when it is not there.

The clips are not in the repository (their licence does not allow it): they sit in the shared folder beside the
checkout, ``../shared/footage``. A test that needs them fails, naming what is missing and where it looked, instead
of being skipped: a run without the footage has not shown that the camera counter counts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
BUS = SHARED / "footage" / "bus-overhead"
BUS_FILES = ("bus.avi", "bus_crossings.csv")


def missing_footage(folder: Path = BUS, names: tuple[str, ...] = BUS_FILES) -> list[Path]:
    return [folder / name for name in names if not (folder / name).is_file()]


def require_bus(folder: Path = BUS) -> Path:
    """The bus-overhead folder, or fail the calling test with what is missing."""
    missing = missing_footage(folder)
    if missing:
        pytest.fail(
            f"camera footage missing: {', '.join(str(p) for p in missing)}. The camera tests need the shared "
            f"footage folder beside the project checkout ({folder.parent.parent.name}/footage/{folder.name}/ "
            "with bus.avi and bus_crossings.csv); copy it there and run again.",
            pytrace=False,
        )
    return folder


@pytest.fixture(scope="session")
def bus() -> Path:
    return require_bus()
