"""`footfall member new` and `footfall member check`: issue and check member codes (footfall/member_code.py)."""

from __future__ import annotations

import click


@click.group("member")
def member() -> None:
    """Member codes: 9 digits with a check digit, issued by the center (never a phone number or a name)."""


@member.command("new")
@click.option("-n", "--count", default=1, show_default=True, type=click.IntRange(1, 10_000), help="How many.")
@click.option(
    "--serial",
    type=click.IntRange(10_000_000, 99_999_999),
    default=None,
    help="Make the code of this 8-digit serial (and the next ones) instead of random serials.",
)
def new(count: int, serial: int | None) -> None:
    """Print new member codes, one a line (random serials unless --serial is given)."""
    from footfall import member_code

    if serial is not None and serial + count - 1 > member_code.SERIAL_MAX:
        raise click.ClickException(
            f"--serial {serial} with --count {count} runs past {member_code.SERIAL_MAX}"
        )
    codes: list[str] = []
    while len(codes) < count:
        code = member_code.make(serial + len(codes)) if serial is not None else member_code.random_code()
        if code not in codes:
            codes.append(code)
    click.echo("\n".join(codes))


@member.command("check")
@click.argument("codes", nargs=-1, required=True)
def check(codes: tuple[str, ...]) -> None:
    """Say whether each CODE is a valid member code; exit 1 if any is not."""
    from footfall import member_code

    bad = 0
    for code in codes:
        reason = member_code.problem(code)
        click.echo(f"{code}: {'ok' if reason is None else reason}")
        bad += reason is not None
    if bad:
        raise SystemExit(1)
