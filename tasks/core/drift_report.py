"""The drift report people open: the decision and, per column, the distributions it was made on.

It is drawn from the statistics the decision used (quantiles and frequencies of every row, not a
sample), so it can never disagree with the decision, and it costs milliseconds: a check writes
it without importing Evidently. Evidently's own per-column report, rendered from a sample, is
linked from it where `drift.evidently_report` asks for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from jinja2 import Environment, select_autoescape

from driftloop.tasks.core.monitoring import (
    Assessment,
    FeatureScore,
    FeatureStats,
    WindowStats,
    bin_edges,
    binned_shares,
)
from driftloop.tasks.core.policy import PolicyDecision

#: Categories drawn per column; the rest are summed into one "other" bar.
TOP_CATEGORIES = 12
_CHART_W, _CHART_H = 260, 64


@dataclass(frozen=True)
class Bar:
    label: str
    reference: float
    current: float


@dataclass(frozen=True)
class ColumnView:
    score: FeatureScore
    reference_nulls: float | None
    current_nulls: float | None
    bars: list[Bar]
    summary: str


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.0f}" if 1e4 <= abs(value) < 1e15 else f"{value:.4g}"


def _bars(ref: FeatureStats, cur: FeatureStats) -> list[Bar]:
    """Both sides' shares in the reference's deciles (numeric) or in the largest categories."""
    if ref.kind == "numeric":
        edges = bin_edges(ref)
        r, c = binned_shares(ref, cur, edges)
        bounds = ["min", *(_num(float(e)) for e in edges), "max"]
        return [
            Bar(f"{bounds[i]} .. {bounds[i + 1]}", float(r[i]), float(c[i])) for i in range(len(r))
        ]
    keys = sorted(
        set(ref.frequencies) | set(cur.frequencies),
        key=lambda k: -max(ref.frequencies.get(k, 0.0), cur.frequencies.get(k, 0.0)),
    )
    bars = [
        Bar(k, ref.frequencies.get(k, 0.0), cur.frequencies.get(k, 0.0))
        for k in keys[:TOP_CATEGORIES]
    ]
    rest = keys[TOP_CATEGORIES:]
    if rest:
        bars.append(
            Bar(
                f"{len(rest)} other values",
                sum(ref.frequencies.get(k, 0.0) for k in rest),
                sum(cur.frequencies.get(k, 0.0) for k in rest),
            )
        )
    return bars


def _summary(ref: FeatureStats | None, cur: FeatureStats | None) -> str:
    """Median and 5th-95th percentile (numeric) or the most frequent value, on each side."""

    def one(stats: FeatureStats | None) -> str:
        if stats is None or stats.empty:
            return "no values"
        if stats.kind == "numeric":
            q = np.asarray(stats.quantiles)
            p5, p50, p95 = np.quantile(q, [0.05, 0.5, 0.95])
            return f"median {_num(float(p50))}, 5-95% {_num(float(p5))} .. {_num(float(p95))}"
        top = max(stats.frequencies, key=lambda k: stats.frequencies[k])
        return f"{len(stats.frequencies)} values, most often {top!r} ({stats.frequencies[top]:.1%})"

    return f"reference: {one(ref)}; window: {one(cur)}"


def columns_view(
    assessment: Assessment, reference: WindowStats, current: WindowStats
) -> list[ColumnView]:
    views = []
    for score in assessment.scores:
        if score.comparison != "skew":
            continue
        ref, cur = reference.features.get(score.feature), current.features.get(score.feature)
        drawable = ref is not None and cur is not None and not ref.empty and not cur.empty
        views.append(
            ColumnView(
                score=score,
                reference_nulls=None if ref is None else ref.null_rate,
                current_nulls=None if cur is None else cur.null_rate,
                bars=_bars(ref, cur) if drawable else [],  # type: ignore[arg-type]
                summary=_summary(ref, cur),
            )
        )
    # The columns that moved most come first, the way a person reads the page.
    return sorted(views, key=lambda v: (not v.score.drifted, -_severity(v.score)))


def _severity(score: FeatureScore) -> float:
    return math.inf if math.isnan(score.score) else score.score / max(score.threshold, 1e-12)


def _chart(bars: list[Bar]) -> list[dict[str, str]]:
    """Each bar pair's title and rectangles (reference left, window right), scaled to the
    tallest share."""
    peak = max([max(b.reference, b.current) for b in bars] + [1e-12])
    slot = _CHART_W / len(bars)
    out = []
    for i, b in enumerate(bars):
        ref_h, cur_h = _CHART_H * b.reference / peak, _CHART_H * b.current / peak
        out.append(
            {
                "title": f"{b.label}: reference {b.reference:.1%}, window {b.current:.1%}",
                "x": f"{i * slot:.1f}",
                "cx": f"{i * slot + slot / 2:.1f}",
                "w": f"{max(slot / 2 - 1, 1):.1f}",
                "ry": f"{_CHART_H - ref_h:.1f}",
                "rh": f"{ref_h:.1f}",
                "cy": f"{_CHART_H - cur_h:.1f}",
                "ch": f"{cur_h:.1f}",
            }
        )
    return out


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Drift report: {{ d.model_name }}, window ending {{ d.window_end }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;
text-align:left;vertical-align:top}.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b00020;font-weight:600}.ok{color:#1b5e20}.muted{color:#777;font-size:.9em}
svg rect.r{fill:#9e9e9e}svg rect.c{fill:#1565c0}
</style></head><body>
<h1>Drift report: {{ d.model_name }}</h1>
<p><b>{{ "RETRAIN" if d.retrain else "No retrain" }}</b> (rule <code>{{ d.rule }}</code>):
{{ d.reason }}</p>
<p class="muted">Window {{ d.window_start }} .. {{ d.window_end }},
{{ "{:,}".format(a.current_rows) }} rows, against the champion v{{ d.baseline_version }}'s reference
({{ "{:,}".format(reference_rows) }} rows). Check <code>{{ d.check_id }}</code>, written
{{ written }}. Every figure here is computed from all rows' statistics, the same ones the
decision used.{% if detail %} <a href="{{ detail }}">Evidently's per-column report</a>
(from a sample of {{ "{:,}".format(sample_size) }} rows per side).{% endif %}</p>
<h2>Signals</h2>
<table><tr><th>signal</th><th>breached</th><th class="n">value</th><th class="n">threshold</th>
<th>detail</th></tr>
{% for s in a.signals.values() %}<tr><td>{{ s.name }}</td>
<td class="{{ 'bad' if s.breached else 'ok' }}">{{ "yes" if s.breached else ("no" if s.judged
else "not judged") }}</td><td class="n">{{ num(s.value) }}</td><td class="n">{{ num(s.threshold)
}}</td><td>{{ s.detail }}</td></tr>
{% endfor %}</table>
<h2>Columns</h2>
<p class="muted">Bars: share of rows in each of the reference's deciles (numeric) or per value
(categorical), <span style="color:#9e9e9e">reference</span> vs
<span style="color:#1565c0">this window</span>.</p>
<table><tr><th>column</th><th>drifted</th><th class="n">score</th><th class="n">threshold</th>
<th class="n">nulls (ref / window)</th><th>distribution</th></tr>
{% for v in columns %}<tr><td><b>{{ v.score.feature }}</b><br><span class="muted">{{
v.score.method }}{% if v.score.note %}; {{ v.score.note }}{% endif %}</span></td>
<td class="{{ 'bad' if v.score.drifted else 'ok' }}">{{ "yes" if v.score.drifted else "no" }}</td>
<td class="n">{{ num(v.score.score) }}</td><td class="n">{{ num(v.score.threshold) }}</td>
<td class="n">{{ pct(v.reference_nulls) }} / {{ pct(v.current_nulls) }}</td>
<td>{% if v.bars %}<svg width="{{ w }}" height="{{ h }}" role="img"
aria-label="{{ v.score.feature }} distribution">{% for r in chart(v.bars) %}<g><title>{{ r.title
}}</title><rect class="r" x="{{ r.x }}" y="{{ r.ry }}" width="{{ r.w }}" height="{{ r.rh }}"/>
<rect class="c" x="{{ r.cx }}" y="{{ r.cy }}" width="{{ r.w }}" height="{{ r.ch }}"/></g>
{% endfor %}</svg><br>{% endif %}<span class="muted">{{ v.summary }}</span></td></tr>
{% endfor %}</table>
</body></html>
"""

_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def render_html(
    assessment: Assessment,
    decision: PolicyDecision,
    reference: WindowStats,
    current: WindowStats,
    *,
    detail_link: str | None,
    sample_size: int,
    written: datetime,
) -> str:
    """The report's HTML: self-contained (no script, no network), so it opens from a file, the
    report server or a presigned S3 link alike."""
    return _ENV.from_string(_TEMPLATE).render(
        d=decision,
        a=assessment,
        reference_rows=reference.rows,
        columns=columns_view(assessment, reference, current),
        detail=detail_link,
        sample_size=sample_size,
        written=written.strftime("%Y-%m-%d %H:%M UTC"),
        num=_num,
        pct=lambda v: "n/a" if v is None else f"{v:.1%}",
        chart=_chart,
        w=_CHART_W,
        h=_CHART_H,
    )
