"""`journey export` round-trips: every Parquet, CSV and XLSX file read back equals the mart."""

from __future__ import annotations


import polars as pl
import pytest

from journey_analytics import export
from journey_analytics.marts import MART_MODELS
from journey_analytics.warehouse import connect, fetch

from tests.pipelines.conftest import journey


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


def _marts(settings) -> dict[str, pl.DataFrame]:
    with connect(settings, read_only=True) as con:
        return {f"marts.{m}": _sorted(fetch(con, f"select * from marts.{m}")) for m in MART_MODELS}


@pytest.fixture(scope="module")
def exported(generated_warehouse, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    home = out / "home"
    home.mkdir()
    result = journey("export", "--database", str(generated_warehouse.warehouse_path), "--out", str(out / "files"), home=home)
    return out / "files", result.stdout, _marts(generated_warehouse)


def test_every_mart_is_exported_in_every_format(exported):
    files, stdout, marts = exported
    assert len(marts) == 12 and all(frame.height > 0 for frame in marts.values())
    for name in MART_MODELS:
        assert name in stdout
        assert (files / "csv" / f"{name}.csv").is_file() and (files / "xlsx" / f"{name}.xlsx").is_file()
        assert (files / "parquet" / name).is_dir() if name in export.PARTITION_BY else (files / "parquet" / f"{name}.parquet").is_file()


def test_parquet_reads_back_equal_partitions_included(exported):
    files, _, marts = exported
    for qualified, mart in marts.items():
        name = qualified.split(".")[1]
        if name in export.PARTITION_BY:
            column = export.PARTITION_BY[name]
            folders = sorted(p.name for p in (files / "parquet" / name).iterdir())
            assert folders == sorted(f"{column}={v}" for v in mart[column].unique()), name
            back = pl.read_parquet(files / "parquet" / name / "**" / "*.parquet", hive_partitioning=True, hive_schema={column: pl.String})
        else:
            back = pl.read_parquet(files / "parquet" / f"{name}.parquet")
        back = _sorted(back.select(mart.columns))
        assert back.schema == mart.schema and back.equals(mart), name


def test_csv_reads_back_equal(exported):
    files, _, marts = exported
    for qualified, mart in marts.items():
        back = pl.read_csv(files / "csv" / f"{qualified.split('.')[1]}.csv", schema=mart.schema)
        assert _sorted(back).equals(mart), qualified


def test_xlsx_reads_back_equal_to_excels_precision(exported):
    """Excel keeps times to the millisecond and 15 significant digits, and an empty text cell is a
    blank cell (read back as null): exact for everything else."""
    files, _, marts = exported
    checked_fraction = False
    for qualified, mart in marts.items():
        back = _sorted(pl.read_excel(files / "xlsx" / f"{qualified.split('.')[1]}.xlsx", schema_overrides=mart.schema))
        assert back.columns == mart.columns and back.height == mart.height, qualified
        expected = _sorted(mart.with_columns(pl.col(pl.Datetime).dt.round("1ms"), pl.col(pl.String).replace("", None)))
        for column in mart.columns:
            got, want = back[column], expected[column]
            assert got.is_null().equals(want.is_null()), (qualified, column)
            if want.dtype == pl.Float64:
                gap = ((got - want).abs() - (want.abs() * 1e-15)).max()
                assert gap is None or gap <= 1e-300, (qualified, column)
                checked_fraction |= bool((want.fill_null(0) % 1 != 0).any())
            else:
                assert got.equals(want), (qualified, column)
    assert checked_fraction, "some doubles with fractions were compared"


def test_xlsx_refuses_a_mart_over_excels_row_limit(generated_warehouse, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "EXCEL_MAX_ROWS", 2)
    with connect(generated_warehouse, read_only=True) as con, pytest.raises(export.ExportError, match=r"marts.funnel_conversion has .* rows"):
        export.export(con, ["marts.funnel_conversion"], ["xlsx"], tmp_path)


def test_unknown_marts_and_formats_are_named(generated_warehouse, tmp_path):
    with connect(generated_warehouse, read_only=True) as con:
        with pytest.raises(export.ExportError, match="no table 'marts.funnel'"):
            export.resolve_tables(con, ["funnel"])
        with pytest.raises(export.ExportError, match="unknown format"):
            export.export(con, ["marts.attribution"], ["json"], tmp_path)
        assert export.resolve_tables(con, ["attribution", "stages.unit_progress"]) == ["marts.attribution", "stages.unit_progress"]
