"""The `journey` command: run the pipeline, generate sample data."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import click

from journey_analytics.settings import PROJECT_ROOT

DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"


def prepare_dagster_home() -> Path:
    """Point DAGSTER_HOME at the project's gitignored home (absolute) with our dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    source = PROJECT_ROOT / "dagster.yaml"
    target = home / "dagster.yaml"
    if source.resolve() != target.resolve() and (not target.exists() or target.read_bytes() != source.read_bytes()):
        shutil.copyfile(source, target)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _console():
    """A rich console; when the output is not a terminal (a log, a pipe) wide enough not to wrap tables."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160, soft_wrap=True)


@click.group()
def main() -> None:
    """journey-analytics: cross-channel customer journeys in DuckDB."""


@main.command()
@click.option("--landing", type=click.Path(file_okay=False, path_type=Path), help="Landing folder (<source>/<YYYY-MM-DD>/files); default: the bundled sample.")
@click.option("--warehouse", type=click.Path(dir_okay=False, path_type=Path), help="DuckDB file to write; default: data/warehouse.duckdb.")
def run(landing: Path | None, warehouse: Path | None) -> None:
    """Materialise every asset on the landing files and print what happened to each source's rows."""
    if landing:
        if not landing.is_dir():
            raise click.BadParameter(f"{landing} is not a folder", param_hint="--landing")
        os.environ["JOURNEY_LANDING_DIR"] = str(landing.resolve())
    if warehouse:
        os.environ["JOURNEY_WAREHOUSE_PATH"] = str(warehouse.resolve())
    prepare_dagster_home()

    from rich import box
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from pipelines import runner  # the one command that needs Dagster

    console = _console()

    class Bar:
        def __init__(self, progress: Progress):
            self.progress, self.task = progress, progress.add_task("starting Dagster", total=None)

        def start(self, total_steps: int) -> None:
            self.progress.update(self.task, total=total_steps)

        def step(self, step_key: str, status: str) -> None:
            if status == "started":
                self.progress.update(self.task, description=step_key)
            else:
                self.progress.advance(self.task)
                if status == "failed":
                    self.progress.console.print(f"[red]failed:[/red] {step_key}")

    started = time.monotonic()
    try:
        with Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            outcome = runner.run_all(progress=Bar(bar))
    except runner.NothingToLoad as error:
        raise click.ClickException(str(error)) from error
    elapsed = time.monotonic() - started

    console.print(f"Landing folder: {outcome.settings.landing_dir}")
    console.print(f"Delivery dates: {outcome.first_date} .. {outcome.last_date} ({outcome.date_count} with files)")
    columns = ["source", "files", "rows_read", "rows_staged", "rows_quarantined", "rows_duplicate", "load_errors", "balanced"]
    table = Table(*columns, box=box.SIMPLE)
    for column in table.columns[1:-1]:
        column.justify = "right"
    for row in outcome.summary:
        table.add_row(*(str(row[c]) for c in columns))
    console.print(table)
    if outcome.load_errors:
        console.print("Files that could not be (fully) read:")
        for e in outcome.load_errors:
            console.print(f"  {e}", markup=False)
    console.print(f"Events in staging.events: {outcome.event_count}")
    for line in outcome.extra_lines:
        console.print(line, markup=False)
    console.print(f"Warehouse: {outcome.settings.warehouse_path}")
    if outcome.settings.publish.enabled:
        console.print(f"Published for BI tools: {outcome.settings.published_path}")
    console.print(f"Finished in {elapsed:.1f} s.")
    unbalanced = [row["source"] for row in outcome.summary if row["balanced"] != "yes"]
    if outcome.failed_checks or unbalanced:
        problems = outcome.failed_checks + [f"{source}: rows do not add up" for source in unbalanced]
        click.echo("\nFailed checks: " + ", ".join(problems), err=True)
        sys.exit(1)
    console.print("All checks passed.")


@main.command()
@click.option("--customers", type=click.IntRange(min=1), default=200, show_default=True, help="Number of people to simulate.")
@click.option("--days", type=click.IntRange(min=1), default=60, show_default=True, help="Length of the simulated period in days.")
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed: the same seed gives the same files.")
@click.option("--start", type=click.DateTime(formats=["%Y-%m-%d"]), default="2025-03-01", show_default=True, help="First simulated day.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to write landing/ and truth/ into.")
def generate(customers: int, days: int, seed: int, start, out: Path) -> None:
    """Write deterministic sample landing files for all four sources, with the true person of every identifier."""
    from journey_analytics.generator import GeneratorConfig, generate as run_generator

    stats = run_generator(GeneratorConfig(customers=customers, days=days, seed=seed, start=start.date()), out)
    click.echo(f"Wrote {stats['files']} files with {stats['records']} records for {customers} people over {days} days to {out}")
    for source, count in sorted(stats["by_source"].items()):
        click.echo(f"  {source}: {count} records")


@main.command()
@click.option("--port", type=int, default=3000, show_default=True, help="Port of the web UI.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0 to share it on the network).")
def ui(port: int, host: str) -> None:
    """Start the Dagster UI with its daemon (so the schedule and the sensors run) on this project."""
    import subprocess

    home = prepare_dagster_home()
    click.echo(f"Dagster UI on http://{host}:{port} (Dagster home {home}); Ctrl-C stops it.")
    # no -m: `dagster dev` reads [tool.dagster] in pyproject.toml, as a bare `dagster dev` here does
    command = [sys.executable, "-m", "dagster", "dev", "-h", host, "-p", str(port)]
    try:
        sys.exit(subprocess.call(command, cwd=PROJECT_ROOT))
    except KeyboardInterrupt:
        sys.exit(130)


def _database(database: Path | None) -> Path:
    """The file to read: --database, else the published snapshot (never blocks a run), else the warehouse."""
    from journey_analytics.settings import load_settings

    if database:
        if not database.is_file():
            raise click.BadParameter(f"{database} does not exist", param_hint="--database")
        return database
    settings = load_settings()
    for candidate in (settings.published_path, settings.warehouse_path):
        if candidate.is_file():
            return candidate
    raise click.UsageError(f"neither {settings.published_path} nor {settings.warehouse_path} exists: run `journey run` first")


@main.command(name="export")
@click.option("--mart", "marts", multiple=True, help="A mart to export (repeatable), e.g. funnel_conversion or stages.unit_progress; default: every mart.")
@click.option("--format", "formats", multiple=True, type=click.Choice(["parquet", "csv", "xlsx"]), help="Repeatable; default: all three.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("exports"), show_default=True, help="Folder for <format>/<mart> files.")
@click.option("--database", type=click.Path(dir_okay=False, path_type=Path), help="DuckDB file to read; default: the published snapshot, else the warehouse.")
def export_command(marts: tuple[str, ...], formats: tuple[str, ...], out: Path, database: Path | None) -> None:
    """Write marts to Parquet (Hive-partitioned where it helps), CSV and XLSX; see docs/exports.md."""
    import duckdb
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from journey_analytics import export

    source = _database(database)
    console = _console()
    with duckdb.connect(str(source), read_only=True) as con:
        try:
            tables = export.resolve_tables(con, list(marts))
            chosen = list(formats) or list(export.FORMATS)
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=True) as progress:
                task = progress.add_task("exporting", total=len(tables) * len(chosen))

                def step(table: str, fmt: str) -> None:
                    progress.update(task, description=f"{fmt:7} {table}")

                written = export.export(con, tables, chosen, out, progress=lambda t, f: (step(t, f), progress.advance(task, 0)))
                progress.update(task, completed=len(written))
        except export.ExportError as error:
            raise click.ClickException(str(error)) from error
    summary = Table(title=f"Exported from {source}", show_lines=False)
    for column in ("table", "format", "rows", "path"):
        summary.add_column(column, justify="right" if column == "rows" else "left")
    for item in written:
        summary.add_row(item.table, item.format, f"{item.rows:,}", str(item.path))
    console.print(summary)
    console.print(f"{len(written)} file(s) written under {out}")


@main.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("reports/journeys.html"), show_default=True, help="The HTML file to write.")
@click.option("--database", type=click.Path(dir_okay=False, path_type=Path), help="DuckDB file to read; default: the published snapshot, else the warehouse.")
@click.option("--stage-model", help="Stage model for the drop-off chart; default: 'default' when present, else the first.")
def report(out: Path, database: Path | None, stage_model: str | None) -> None:
    """Write one self-contained HTML report (works offline): funnels, drop-off, Sankey, churn, attribution, retention."""
    import duckdb

    from journey_analytics.report import write_report

    source = _database(database)
    console = _console()
    with console.status(f"Reading {source}"), duckdb.connect(str(source), read_only=True) as con:
        try:
            charts = write_report(con, out, stage_model, source=str(source))
        except ValueError as error:
            raise click.ClickException(str(error)) from error
    for chart in charts:
        console.print(f"  {chart.title}: {chart.numbers.height:,} rows" + ("" if chart.numbers.height else " (no data: shown as a note)"))
    console.print(f"Report written to {out} ({out.stat().st_size / 1e6:.1f} MB, self-contained)")


if __name__ == "__main__":
    main()
