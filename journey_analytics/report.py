"""`journey report`: one self-contained HTML file of the journeys, readable offline.

Charts (Plotly; its JavaScript is embedded once, so the file opens anywhere without a network):
the stage funnel of every stage model, drop-off by stage with the last touchpoint, a Sankey of
channel paths, churn points, the attribution models side by side and the cohort retention heat
map. Under each chart, the numbers behind it as a table. Every figure is read from the marts
(docs/data-dictionary.md), so the report agrees with what analysts query.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from plotly.offline import get_plotlyjs

from journey_analytics.warehouse import fetch

#: Sankey: the first steps of the paths (later steps make the picture unreadable)
SANKEY_STEPS = 4
PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B", "#B279A2", "#FF9DA6", "#9D755D", "#BAB0AC"]


@dataclass
class Chart:
    slug: str
    title: str
    explanation: str
    figure: go.Figure | None
    numbers: pl.DataFrame
    notes: list[str] = field(default_factory=list)


def _layout(fig: go.Figure, height: int = 420) -> go.Figure:
    fig.update_layout(height=height, margin={"l": 60, "r": 30, "t": 30, "b": 50}, template="plotly_white",
                      font={"family": "system-ui, sans-serif", "size": 13}, legend={"orientation": "h", "y": -0.15})
    return fig


def funnel_charts(con: duckdb.DuckDBPyConnection) -> list[Chart]:
    frame = fetch(con, """
        select stage_model, stage_index, stage, entered, advanced, conversion_to_next, conversion_from_top, median_hours_to_next
        from marts.funnel_conversion where breakdown = 'all' order by stage_model, stage_index""")
    charts = []
    for (model,), rows in frame.group_by(["stage_model"], maintain_order=True):
        fig = go.Figure(go.Funnel(y=rows["stage"].to_list(), x=rows["entered"].to_list(), textinfo="value+percent initial",
                                  marker={"color": PALETTE[0]}))
        charts.append(Chart(f"funnel-{model}", f"Stage funnel — {model}",
                            "Funnel units (journeys by default) that reached each stage within the conversion window; "
                            "percentages from the top (marts.funnel_conversion, breakdown 'all').",
                            _layout(fig, 360), rows.drop("stage_model")))
    return charts


def drop_off_chart(con: duckdb.DuckDBPyConnection, stage_model: str) -> Chart:
    frame = fetch(con, """
        select stopped_stage_index, stopped_stage, coalesce(last_channel, '(none)') as last_channel, count(*) as units
        from marts.funnel_drop_off
        where stage_model = $model and not still_in_window
        group by stopped_stage_index, stopped_stage, coalesce(last_channel, '(none)')
        order by stopped_stage_index, units desc, last_channel""", {"model": stage_model})
    fig = go.Figure()
    for i, channel in enumerate(sorted(frame["last_channel"].unique().to_list())):
        rows = frame.filter(pl.col("last_channel") == channel)
        fig.add_bar(name=channel, x=rows["stopped_stage"].to_list(), y=rows["units"].to_list(), marker_color=PALETTE[i % len(PALETTE)])
    fig.update_layout(barmode="stack", xaxis={"title": "stage where the unit stopped", "categoryorder": "array",
                                              "categoryarray": frame.unique("stopped_stage", maintain_order=True)["stopped_stage"].to_list()},
                      yaxis={"title": "units that dropped off"})
    return Chart("drop-off", f"Drop-off by stage and last touchpoint — {stage_model}",
                 "Units whose funnel stopped at a stage once their window closed, coloured by the channel of their last own "
                 "touch (marts.funnel_drop_off; units still inside their window are left out).", _layout(fig), frame)


def sankey_chart(con: duckdb.DuckDBPyConnection, steps: int = SANKEY_STEPS) -> Chart:
    frame = fetch(con, """
        select step, from_channel, to_channel, transitions from marts.channel_transitions
        where step <= $steps order by step, transitions desc, from_channel, to_channel""", {"steps": steps})
    nodes: dict[tuple[int, str], int] = {}

    def node(step: int, channel: str) -> int:
        return nodes.setdefault((step, channel), len(nodes))

    sources, targets, values = [], [], []
    for row in frame.iter_rows(named=True):
        sources.append(node(row["step"], row["from_channel"]))
        targets.append(node(row["step"] + 1, row["to_channel"]))
        values.append(row["transitions"])
    labels = [channel for (_, channel) in nodes]
    fig = go.Figure(go.Sankey(arrangement="snap", node={"label": labels, "pad": 12, "thickness": 14},
                              link={"source": sources, "target": targets, "value": values}))
    return Chart("sankey", "Channel paths (Sankey)",
                 f"Journeys' touch paths by channel for the first {steps} steps, from (start) to (conversion) or (no conversion) "
                 "(marts.channel_transitions; each band is one step from one channel to the next).",
                 _layout(fig, 520), frame)


def churn_chart(con: duckdb.DuckDBPyConnection) -> Chart:
    frame = fetch(con, """
        select last_activity, churn_reason, count(*) as churns
        from marts.churn_points where outcome in ('churned', 'churned_returned')
        group by last_activity, churn_reason order by churns desc, last_activity, churn_reason""")
    fig = go.Figure()
    for i, reason in enumerate(sorted(frame["churn_reason"].unique().to_list())):
        rows = frame.filter(pl.col("churn_reason") == reason)
        fig.add_bar(name=reason, y=rows["last_activity"].to_list(), x=rows["churns"].to_list(), orientation="h",
                    marker_color=PALETTE[i % len(PALETTE)])
    fig.update_layout(barmode="stack", xaxis={"title": "churns"}, yaxis={"title": "last activity before the churn", "autorange": "reversed"})
    censored = con.execute("select count(*) from marts.churn_points where outcome = 'censored'").fetchall()[0][0]
    return Chart("churn-points", "Churn points",
                 "The customer's last own event before each churn (returned or not), by churn reason: inactivity beyond "
                 "the churn window or an explicit signal (marts.churn_points; docs/churn.md).", _layout(fig), frame,
                 [f"{censored:,} customers are censored (not churned by the data's end) and not counted."])


def attribution_chart(con: duckdb.DuckDBPyConnection) -> Chart:
    frame = fetch(con, """
        select value as channel, model, conversions, revenue, share from marts.attribution
        where dimension = 'channel' order by channel, model""")
    fig = go.Figure()
    models = ["first_touch", "last_touch", "linear", "position_based", "time_decay", "markov"]
    models = [m for m in models if m in set(frame["model"].to_list())] + sorted(set(frame["model"].to_list()) - set(models))
    for i, model in enumerate(models):
        rows = frame.filter(pl.col("model") == model)
        fig.add_bar(name=model, x=rows["channel"].to_list(), y=rows["conversions"].round(2).to_list(), marker_color=PALETTE[i % len(PALETTE)])
    fig.update_layout(barmode="group", xaxis={"title": "channel"}, yaxis={"title": "conversions credited"})
    return Chart("attribution", "Attribution models side by side",
                 "Conversions credited to each channel by each model; every model credits the same total "
                 "(marts.attribution, dimension 'channel'; docs/attribution.md).", _layout(fig), frame)


def retention_chart(con: duckdb.DuckDBPyConnection) -> Chart:
    frame = fetch(con, """
        select cohort, period_number, cohort_customers, active_customers, share_active, share_purchasing, is_partial
        from marts.retention_cohorts order by cohort, period_number""")
    cohorts = frame["cohort"].unique().sort().to_list()
    periods = list(range(int(frame["period_number"].max() or 0) + 1)) if frame.height else []
    z = [[None] * len(periods) for _ in cohorts]
    text = [[""] * len(periods) for _ in cohorts]
    for row in frame.iter_rows(named=True):
        i, j = cohorts.index(row["cohort"]), row["period_number"]
        z[i][j] = row["share_active"]
        text[i][j] = f"{row['share_active']:.0%}" + ("*" if row["is_partial"] else "")
    fig = go.Figure(go.Heatmap(z=z, x=[str(p) for p in periods], y=[c.isoformat() for c in cohorts], text=text, texttemplate="%{text}",
                               colorscale="Blues", zmin=0, zmax=1, colorbar={"title": "active"}))
    fig.update_layout(xaxis={"title": "periods since the first purchase"}, yaxis={"title": "cohort", "autorange": "reversed", "type": "category"})
    return Chart("retention", "Cohort retention",
                 "Share of each first-purchase cohort active in each later period; * marks a period still running "
                 "(marts.retention_cohorts; docs/customers.md).", _layout(fig, 120 + 40 * max(len(cohorts), 3)), frame)


def _table(frame: pl.DataFrame, limit: int = 200) -> str:
    def cell(value) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.2f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return html.escape(str(value))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in frame.head(limit).iter_rows())
    more = f"<p class='note'>First {limit} of {frame.height:,} rows.</p>" if frame.height > limit else ""
    return f"<table class='numbers'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1.5rem; color: #222; }
h1 { margin-bottom: .2rem; } .meta { color: #666; margin-top: 0; }
section.chart { border-top: 1px solid #ddd; padding-top: 1rem; margin-top: 1.5rem; }
p.explain { color: #444; } p.note { color: #666; font-size: .9rem; }
table.numbers { border-collapse: collapse; font-size: .85rem; margin: .5rem 0; }
table.numbers th, table.numbers td { border: 1px solid #ddd; padding: .2rem .5rem; text-align: right; }
table.numbers th { background: #f4f4f4; } details summary { cursor: pointer; color: #245; }
nav a { margin-right: 1rem; }
"""


def build_report(con: duckdb.DuckDBPyConnection, stage_model: str | None = None, source: str = "") -> tuple[str, list[Chart]]:
    """The report's HTML and its charts (the charts for tests and the command's summary)."""
    models = [r[0] for r in con.execute("select distinct stage_model from marts.funnel_conversion order by 1").fetchall()]
    if not models:
        raise ValueError("marts.funnel_conversion is empty: run the pipeline before writing a report")
    main_model = stage_model or ("default" if "default" in models else models[0])
    if main_model not in models:
        raise ValueError(f"stage model {main_model!r} is not in the marts; they hold {', '.join(models)}")
    charts = [*funnel_charts(con), drop_off_chart(con, main_model), sankey_chart(con), churn_chart(con),
              attribution_chart(con), retention_chart(con)]
    span = con.execute("select min(first_event_at), max(last_event_at), count(*) from marts.customer_summary").fetchall()[0]
    sections = []
    for chart in charts:
        if chart.numbers.height == 0:
            body = "<p class='note empty'>No data for this chart in these marts.</p>"
        else:
            body = pio.to_html(chart.figure, include_plotlyjs=False, full_html=False, div_id=f"chart-{chart.slug}",
                               config={"displaylogo": False, "responsive": True})
        notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in chart.notes)
        sections.append(
            f"<section class='chart' id='{chart.slug}' data-rows='{chart.numbers.height}'><h2>{html.escape(chart.title)}</h2>"
            f"<p class='explain'>{html.escape(chart.explanation)}</p>{body}{notes}"
            f"<details class='numbers'><summary>The numbers behind this chart ({chart.numbers.height:,} rows)</summary>"
            f"{_table(chart.numbers)}</details></section>")
    nav = "".join(f"<a href='#{c.slug}'>{html.escape(c.title.split(' — ')[0] if c.slug.startswith('funnel-') else c.title)}"
                  f"{' (' + c.slug[7:] + ')' if c.slug.startswith('funnel-') else ''}</a>" for c in charts)
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Customer journeys report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{STYLE}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>Customer journeys</h1>
<p class="meta">{span[2]:,} persons with events from {span[0]} to {span[1]}; main stage model {html.escape(main_model)}.
Generated {generated} from {html.escape(source)}.</p>
<nav>{nav}</nav>
{''.join(sections)}
</body></html>
"""
    return page, charts


def write_report(con: duckdb.DuckDBPyConnection, out: Path, stage_model: str | None = None, source: str = "") -> list[Chart]:
    page, charts = build_report(con, stage_model, source)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(out)
    return charts
