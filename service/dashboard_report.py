"""A static HTML stand-in for the Grafana dashboard: every panel's PromQL evaluated by a real
Prometheus, as a table of the latest values and one line chart per panel (inline SVG).

Grafana itself cannot be installed where this was built; this shows the same queries, read from
deploy/grafana/dashboards/alertfeat.json, so a person can open the result in any browser.
"""

from __future__ import annotations

import html
import json
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


@dataclass
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]  # (unix time, value)


def query(prometheus: str, promql: str) -> list[dict]:
    """An instant query through Prometheus's HTTP API: the `result` list."""
    return _get(prometheus, "/api/v1/query", {"query": promql})["result"]


def query_range(prometheus: str, promql: str, start: float, end: float, step_s: float) -> list[Series]:
    data = _get(prometheus, "/api/v1/query_range", {"query": promql, "start": start, "end": end, "step": step_s})
    return [Series(r["metric"], [(float(t), float(v)) for t, v in r["values"]]) for r in data["result"]]


def _get(prometheus: str, path: str, params: dict) -> dict:
    url = f"{prometheus.rstrip('/')}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise RuntimeError(f"Prometheus refused {params.get('query')!r}: {body.get('error')}")
    return body["data"]


def panel_targets(dashboard: dict) -> list[tuple[str, list[tuple[str, str]]]]:
    """(panel title, [(legend, expr)]) for every panel with queries."""
    return [(p["title"], [(t.get("legendFormat") or t["expr"], t["expr"]) for t in p["targets"]])
            for p in dashboard["panels"] if p.get("targets")]


def _legend(fmt: str, labels: dict[str, str]) -> str:
    for key, value in labels.items():
        fmt = fmt.replace("{{" + key + "}}", value).replace("{{ " + key + " }}", value)
    return fmt


def _svg(lines: list[tuple[str, Series]], width: int = 640, height: int = 160) -> str:
    points = [p for _, s in lines for p in s.points]
    if not points:
        return "<p>no data</p>"
    t0, t1 = min(p[0] for p in points), max(p[0] for p in points)
    v0, v1 = min(0.0, min(p[1] for p in points)), max(p[1] for p in points)
    sx = (width - 60) / ((t1 - t0) or 1)
    sy = (height - 20) / ((v1 - v0) or 1)
    parts = [f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="0" y="12" font-size="10">{v1:.4g}</text>',
             f'<text x="0" y="{height - 2}" font-size="10">{v0:.4g}</text>']
    for i, (name, series) in enumerate(lines):
        xy = " ".join(f"{50 + (t - t0) * sx:.1f},{height - 10 - (v - v0) * sy:.1f}" for t, v in series.points)
        colour = COLOURS[i % len(COLOURS)]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{xy}">'
                     f"<title>{html.escape(name)}</title></polyline>")
    parts.append("</svg>")
    return "".join(parts)


def render(prometheus: str, dashboard: dict, minutes: float = 15.0, step_s: float = 5.0) -> str:
    """The HTML report over the last `minutes`."""
    end = time.time()
    start = end - 60 * minutes
    rows, charts = [], []
    for title, targets in panel_targets(dashboard):
        lines = []
        for legend, expr in targets:
            for series in query_range(prometheus, expr, start, end, step_s):
                name = _legend(legend, series.labels)
                lines.append((name, series))
                latest = series.points[-1][1] if series.points else float("nan")
                rows.append(f"<tr><td>{html.escape(title)}</td><td>{html.escape(name)}</td>"
                            f"<td><code>{html.escape(expr)}</code></td><td>{latest:.6g}</td></tr>")
            if not any(name for name, s in lines if s.points):
                rows.append(f"<tr><td>{html.escape(title)}</td><td>-</td><td><code>{html.escape(expr)}</code></td>"
                            "<td>no data</td></tr>")
        legend = ", ".join(f'<span style="color:{COLOURS[i % len(COLOURS)]}">{html.escape(n)}</span>'
                           for i, (n, _) in enumerate(lines))
        charts.append(f'<section class="panel"><h2>{html.escape(title)}</h2><p>{legend}</p>{_svg(lines)}</section>')
    return ("<!doctype html><html><head><meta charset='utf-8'><title>alertfeat dashboard (static)</title>"
            "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}"
            "table{border-collapse:collapse}</style></head><body>"
            f"<h1>{html.escape(dashboard.get('title', 'alertfeat'))}: static report</h1>"
            f"<p>Every Grafana panel's query, evaluated by Prometheus at {html.escape(prometheus)} over the last "
            f"{minutes:g} minutes (a stand-in for Grafana).</p>"
            "<table><tr><th>panel</th><th>series</th><th>query</th><th>latest</th></tr>" + "".join(rows) +
            "</table>" + "".join(charts) + "</body></html>")
