"""`footfall report daily|weekly|monthly|annual -c site.toml`: the report pages' figures on the terminal, and
the same tables as CSV or XLSX. Top floor: only click is imported here; the rest inside the commands."""

from __future__ import annotations

import click

from footfall.cli_common import SITE_OPTION, load_site_or_exit

CONFIG = SITE_OPTION
CSV = click.option(
    "--csv", "csv_path", type=click.Path(dir_okay=False), help="Also write the tables to this CSV."
)
XLSX = click.option(
    "--xlsx", "xlsx_path", type=click.Path(dir_okay=False), help="Also write an Excel workbook."
)
LANG = click.option(
    "--lang", type=click.Choice(["zh-CN", "en"]), default=None, help="Labels (default: the site's)."
)


@click.group()
def report() -> None:
    """Visits, rooms, check-ins, activities and classes for a day, week, month or year."""


def _run(kind: str, config_path: str, value: str | None, csv_path, xlsx_path, lang) -> None:
    from footfall.clock import utcnow
    from footfall.server import reports
    from footfall.server.rooms import today
    from footfall.server.store import open_store

    site = load_site_or_exit(config_path)
    lang = lang or site.server.language
    now = utcnow()
    try:
        anchor = reports.parse_anchor(kind, value, today(site, now))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    store = open_store(site)
    try:
        rep = reports.report(site, store, kind, anchor, now)
    finally:
        store.close()
    for name, header, rows in reports.tables(rep, lang):
        if kind == "annual" and name == reports.labels(lang)["reports.t.days"]:
            continue  # 365 lines: in the exports, not on the terminal
        click.echo(f"== {name}")
        click.echo("\t".join(str(h) for h in header))
        for row in rows:
            click.echo("\t".join("" if v is None else str(v) for v in row))
        click.echo("")
    if csv_path:
        with open(csv_path, "w", encoding="utf-8-sig", newline="") as fh:
            reports.write_csv(rep, fh, lang)
        click.echo(f"wrote {csv_path}", err=True)
    if xlsx_path:
        reports.write_xlsx(rep, xlsx_path, lang)
        click.echo(f"wrote {xlsx_path}", err=True)


@report.command()
@CONFIG
@click.option("--date", "value", help="YYYY-MM-DD (default: today).")
@CSV
@XLSX
@LANG
def daily(config_path, value, csv_path, xlsx_path, lang) -> None:
    """One day: rooms with peaks, hours, check-ins, activities."""
    _run("daily", config_path, value, csv_path, xlsx_path, lang)


@report.command()
@CONFIG
@click.option("--date", "value", help="Any day of the week, YYYY-MM-DD (default: this week).")
@CSV
@XLSX
@LANG
def weekly(config_path, value, csv_path, xlsx_path, lang) -> None:
    """One week, Monday to Sunday."""
    _run("weekly", config_path, value, csv_path, xlsx_path, lang)


@report.command()
@CONFIG
@click.option("--month", "value", help="YYYY-MM (default: this month).")
@CSV
@XLSX
@LANG
def monthly(config_path, value, csv_path, xlsx_path, lang) -> None:
    """One month: the figures of the printable monthly report."""
    _run("monthly", config_path, value, csv_path, xlsx_path, lang)


@report.command()
@CONFIG
@click.option("--year", "value", help="YYYY (default: this year).")
@CSV
@XLSX
@LANG
def annual(config_path, value, csv_path, xlsx_path, lang) -> None:
    """One year: annual service volume, average daily visits, activities, classes, busiest rooms and hours."""
    _run("annual", config_path, value, csv_path, xlsx_path, lang)
