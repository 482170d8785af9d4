"""Every `footfall` command has help, and every command is documented."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from footfall.cli import main

ROOT = Path(__file__).resolve().parents[1]


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    group.list_commands(click.Context(group))  # the top group adds the apps' commands when first asked
    for name, command in group.commands.items():
        if command.hidden:
            continue
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


def test_every_command_has_help_and_docs():
    docs = "\n".join(p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
    runner = CliRunner()
    commands = list(all_commands(main))
    assert len(commands) >= 6
    for path, command in commands:
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert (command.help or "").strip(), f"footfall {' '.join(path)} has no help text"
        assert f"footfall {' '.join(path)}" in docs, f"footfall {' '.join(path)} is not documented"
