"""`journey report` writes one self-contained HTML file whose every chart renders with data in a
real browser, offline, with the numbers behind it."""

from __future__ import annotations

from journey_analytics.warehouse import connect

from tests.browser import chromium_page, output_folder
from tests.pipelines.conftest import journey

CHARTS = ("funnel-default", "drop-off", "sankey", "churn-points", "attribution", "retention")

#: per chart: how many drawn marks (bars, funnel segments, Sankey nodes and links, heat map image) Plotly put in the SVG
MARKS = """() => [...document.querySelectorAll('section.chart')].map(section => {
    const chart = section.querySelector('.plotly-graph-div');
    return {slug: section.id, rows: Number(section.dataset.rows),
            table_rows: section.querySelectorAll('table.numbers tbody tr').length,
            traces: chart ? (chart._fullData || []).length : 0,
            marks: chart ? chart.querySelectorAll('.trace path.surface, .trace .point path, .trace .bars path, .sankey-node, .sankey-link, .hm image, .heatmaplayer image, .funnellayer path').length : 0,
            width: chart ? chart.getBoundingClientRect().width : 0,
            funnel_x: chart && chart._fullData && chart._fullData[0].type === 'funnel' ? Array.from(chart._fullData[0].x) : null};
})"""


def test_the_report_renders_every_chart_with_data_offline(generated_warehouse, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "journeys.html"
    result = journey("report", "--database", str(generated_warehouse.warehouse_path), "--out", str(out), home=home)
    assert "Report written" in result.stdout and "no data" not in result.stdout, result.stdout
    with connect(generated_warehouse, read_only=True) as con:
        entered = [r[0] for r in con.execute(
            "select entered from marts.funnel_conversion where breakdown = 'all' and stage_model = 'default' order by stage_index").fetchall()]

    with chromium_page() as page:
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.route("http*://**", lambda route: route.abort())  # offline: any network fetch would fail (and is recorded)
        page.goto(out.as_uri())
        page.wait_for_function(f"document.querySelectorAll('.plotly-graph-div .main-svg').length >= {len(CHARTS)}", timeout=30_000)
        page.evaluate("document.querySelectorAll('details.numbers').forEach(d => d.open = true)")
        charts = {c["slug"]: c for c in page.evaluate(MARKS)}
        page.screenshot(path=str(output_folder() / "report.png"), full_page=True)

    assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == [], "the report loads nothing from the network"
    assert set(charts) == set(CHARTS)
    for slug, chart in charts.items():
        assert chart["rows"] > 0 and chart["traces"] > 0 and chart["marks"] > 0 and chart["width"] > 300, chart
        assert chart["table_rows"] == min(chart["rows"], 200), chart
    assert charts["funnel-default"]["funnel_x"] == entered, "the funnel shows the mart's numbers"
    assert charts["sankey"]["marks"] > 10
