"""The HTML report: one self-contained, printable page for a privacy officer.

Inline CSS and SVG only: no script, no external asset, so the page opens offline, from a mail
attachment or a ticket, and prints. Every value from a source (container, field and file names,
error messages) is escaped; the examples are the index's masked ones.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from discover.changes import RunDiff, Snapshot
    from discover.index import Index
    from discover.inventory import InventoryRow
    from discover.retention import RetentionReport


def e(value: object) -> str:
    """Escape for text and attribute values alike."""
    return html.escape(str(value), quote=True)


@dataclass(frozen=True)
class ReportData:
    generated_at: str
    index_url: str
    rows: Sequence[InventoryRow]
    containers: Sequence[dict[str, object]]
    history: Sequence[Snapshot]
    changes: RunDiff | None
    retention: RetentionReport | None
    examples: bool = True


_CSS = """
:root { --ink:#1d2433; --mute:#5b6475; --line:#d9dde5; --bad:#b42318; --badbg:#fdecea; --ok:#1a7f37;
  --accent:#2f5bd3; --soft:#f4f6fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink);
  margin: 0 auto; max-width: 1100px; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; }
h4 { font-size: 14px; margin: 12px 0 4px; color: var(--mute); }
.meta { color: var(--mute); margin: 0 0 16px; }
.tiles { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.tile { flex: 1 1 140px; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px;
  background: var(--soft); }
.tile b { display: block; font-size: 22px; }
.tile.bad { background: var(--badbg); border-color: #f5c2bd; }
.tile.bad b { color: var(--bad); }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top;
  overflow-wrap: anywhere; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
.nowrap { white-space: nowrap; }
tr.bad td { background: var(--badbg); }
.bar { display: inline-block; height: 8px; background: var(--accent); border-radius: 2px; vertical-align: middle; }
.bar-wrap { display: inline-block; width: 60px; height: 8px; background: var(--line); border-radius: 2px;
  margin-right: 6px; vertical-align: middle; }
.tag { display: inline-block; padding: 0 6px; margin: 1px 2px 1px 0; border-radius: 3px; background: #e7ecfb;
  font-size: 12px; }
.ex { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; color: var(--mute); }
ul.changes { margin: 4px 0 10px; padding-left: 20px; }
.none { color: var(--ok); }
.err { color: var(--bad); }
.chart { border: 1px solid var(--line); border-radius: 6px; background: #fff; }
.stale { color: var(--mute); font-size: 12px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  h2 { break-after: avoid; }
  table, .tile, svg { break-inside: avoid; }
  .tile, th, tr.bad td, .tile.bad { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def render(data: ReportData) -> str:
    """The page, as one string."""
    failed = [c for c in data.containers if c.get("error")]
    latest = data.history[-1] if data.history else None
    breaches = [r for r in data.retention.results if r.breached] if data.retention else []
    pii_fields = {(r.source, r.container, r.field) for r in data.rows}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>piiport: personal data inventory</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Personal data inventory</h1>",
        f'<p class="meta">Generated {e(data.generated_at)} from the index {e(data.index_url)}'
        + (f"; last scan run {latest.run_id} ({e(latest.status)}, started {e(latest.started_at)})" if latest else "")
        + ".</p>",
        '<div class="tiles">',
        _tile("Sources", len({c["source"] for c in data.containers})),
        _tile("Containers", len(data.containers)),
        _tile("Fields with personal data", len(pii_fields)),
        _tile("Records with personal data", f"{latest.records_with_pii():,}" if latest else "n/a"),
        _tile("Containers that failed", len(failed), bad=bool(failed)),
        _tile("Retention breaches", len(breaches), bad=bool(breaches)) if data.retention else "",
        "</div>",
        "<h2>Trend across runs</h2>",
        _chart(data.history),
        "<h2>Changes since the previous run</h2>",
        _changes(data.changes),
        "<h2>Retention</h2>",
        _retention(data.retention),
        "<h2>Containers that failed</h2>",
        _failed(failed),
        "<h2>Where personal data lives</h2>",
        _inventory(data.rows, data.containers, examples=data.examples),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _tile(label: str, value: object, *, bad: bool = False) -> str:
    return f'<div class="tile{" bad" if bad else ""}"><b>{e(value)}</b>{e(label)}</div>'


def _chart(history: Sequence[Snapshot]) -> str:
    points = [(s.run_id, s.records_with_pii()) for s in history]
    if not points:
        return '<p class="none">No scan run yet.</p>'
    width, height, left, right, top, bottom = 720, 220, 64, 16, 16, 40
    top_value = max(v for _, v in points) or 1
    step = (width - left - right) / max(1, len(points) - 1) if len(points) > 1 else 0

    def xy(i: int, v: int) -> tuple[float, float]:
        x = left + (i * step if len(points) > 1 else (width - left - right) / 2)
        y = top + (height - top - bottom) * (1 - v / top_value)
        return round(x, 1), round(y, 1)

    coords = [xy(i, v) for i, (_, v) in enumerate(points)]
    svg = [
        f'<svg class="chart" role="img" aria-labelledby="trend-title" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        '<title id="trend-title">Records with personal data per scan run</title>',
    ]
    for frac in (0, 0.5, 1):
        y = round(top + (height - top - bottom) * (1 - frac), 1)
        svg.append(f'<line x1="{left}" y1="{y}" x2="{width - right}" y2="{y}" stroke="#d9dde5"/>')
        svg.append(
            f'<text x="{left - 6}" y="{y + 4}" font-size="11" text-anchor="end" fill="#5b6475">'
            f"{e(f'{round(top_value * frac):,}')}</text>"
        )
    if len(coords) > 1:
        svg.append(
            '<polyline fill="none" stroke="#2f5bd3" stroke-width="2" points="'
            + " ".join(f"{x},{y}" for x, y in coords)
            + '"/>'
        )
    label_every = max(1, len(points) // 12)
    for i, ((run_id, value), (x, y)) in enumerate(zip(points, coords, strict=True)):
        svg.append(
            f'<circle cx="{x}" cy="{y}" r="3.5" fill="#2f5bd3"><title>run {e(run_id)}: {e(f"{value:,}")} records'
            "</title></circle>"
        )
        if i % label_every == 0 or i == len(points) - 1:
            svg.append(
                f'<text x="{x}" y="{height - bottom + 16}" font-size="11" text-anchor="middle" fill="#5b6475">'
                f"run {e(run_id)}</text>"
            )
    svg.append(
        f'<text x="{left}" y="{height - 6}" font-size="11" fill="#5b6475">Records with personal data per run '
        "(per container, the most records with a hit in one field)</text>"
    )
    svg.append("</svg>")
    return "\n".join(svg)


def _changes(diff: RunDiff | None) -> str:
    if diff is None:
        return '<p class="none">This is the first scan run: there is nothing to compare it with yet.</p>'
    head = f"<p>From run {e(diff.run_a)} to run {e(diff.run_b)}.</p>"
    if diff.empty:
        return head + '<p class="none">No changes.</p>'
    out = [head]

    def section(title: str, items: list[str], *, bad: bool = False) -> None:
        if items:
            out.append(f'<h3{" class=err" if bad else ""}>{e(title)} ({len(items)})</h3><ul class="changes">')
            out.extend(f"<li>{item}</li>" for item in items)
            out.append("</ul>")

    def where(source: str, container: str, fld: str | None = None) -> str:
        return f"<b>{e(source)}</b> / {e(container)}" + (f" &middot; <code>{e(fld)}</code>" if fld else "")

    section(
        "New personal-data fields",
        [where(f.source, f.container, f.field) + " " + _tags(f.entity_types) for f in diff.new_fields],
        bad=True,
    )
    section(
        "Entity types new to a field",
        [where(t.source, t.container, t.field) + " " + _tags([t.entity_type]) for t in diff.new_entity_types],
        bad=True,
    )
    section("New containers", [where(c.source, c.container) + f" ({e(c.kind)})" for c in diff.new_containers])
    section("Removed containers", [where(c.source, c.container) + f" ({e(c.kind)})" for c in diff.removed_containers])
    section(
        "Removed personal-data fields",
        [where(f.source, f.container, f.field) + " " + _tags(f.entity_types) for f in diff.removed_fields],
    )
    section(
        f"Prevalence changes beyond {diff.threshold:g}",
        [
            where(p.source, p.container, p.field)
            + f" {_tags([p.entity_type])} {p.before:.0%} &rarr; {p.after:.0%} ({p.delta:+.0%})"
            for p in diff.prevalence_changes
        ],
    )
    section(
        "Containers that began failing",
        [where(c.source, c.container) + f': <span class="err">{e(c.error)}</span>' for c in diff.began_failing],
        bad=True,
    )
    section("Containers that stopped failing", [where(c.source, c.container) for c in diff.stopped_failing])
    return "\n".join(out)


def _tags(types: Sequence[str]) -> str:
    return "".join(f'<span class="tag">{e(t)}</span>' for t in types)


def _retention(report: RetentionReport | None) -> str:
    if report is None:
        return '<p class="meta">No retention rules are configured (see <code>retention:</code> in the config).</p>'
    rows = []
    for r in report.results:
        if r.error:
            status = f'<span class="err">could not check: {e(r.error)}</span>'
        elif r.breached:
            status = f'<span class="err">breached: {r.expired:,} {e(r.unit)} past the limit</span>'
        else:
            status = '<span class="none">within the limit</span>'
        known = "n/a" if r.in_index is None else f"{r.in_index:,}"
        rows.append(
            f"<tr{' class=bad' if r.breached or r.error else ''}><td>{e(r.source)} / {e(r.container)}</td>"
            f'<td class="nowrap">{e(r.max_age)}</td><td>{e(r.basis)}</td><td>{status}</td>'
            f'<td class="num">{r.expired:,}</td><td>{e(r.oldest or "")}</td><td class="num">{known}</td></tr>'
        )
    return (
        '<table><thead><tr><th>Source / container</th><th class="nowrap">Limit</th><th>Basis</th><th>Status</th>'
        '<th class="num">Past the limit</th><th>Oldest date</th><th class="num">Of them in the index</th></tr>'
        "</thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _failed(failed: Sequence[dict[str, object]]) -> str:
    if not failed:
        return '<p class="none">None: every container was read.</p>'
    rows = "".join(
        f"<tr class=bad><td>{e(c['source'])}</td><td>{e(c['name'])}</td><td>{e(c.get('scanned_at') or '')}</td>"
        f"<td>{e(c['error'])}</td></tr>"
        for c in failed
    )
    return (
        "<p>What the index knew of these containers before they failed is kept, marked stale.</p>"
        "<table><thead><tr><th>Source</th><th>Container</th><th>Last tried</th><th>Error</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _inventory(rows: Sequence[InventoryRow], containers: Sequence[dict[str, object]], *, examples: bool) -> str:
    if not rows:
        return '<p class="none">No personal data found in the index.</p>'
    records = {(c["source"], c["name"]): c.get("records") for c in containers}
    out = []
    by_source: dict[str, dict[str, list[InventoryRow]]] = {}
    for r in rows:
        by_source.setdefault(r.source, {}).setdefault(r.container, []).append(r)
    for source, by_container in by_source.items():
        out.append(f"<h3>Source {e(source)}</h3>")
        for container, fields in by_container.items():
            n = records.get((source, container))
            stale = ' <span class="stale">(stale: the last scan of it failed)</span>' if fields[0].stale else ""
            count = f" &middot; {n:,} records" if isinstance(n, int) else ""
            out.append(f"<h4>{e(container)}{count}{stale}</h4>")
            head = "<th>Field</th><th>Entity type</th><th>Found</th><th class=num>Records</th><th>Prevalence</th>"
            if examples:
                head += "<th>Masked examples</th>"
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>")
            for r in fields:
                width = round(60 * max(0.0, min(1.0, r.prevalence)))
                ex = f'<td class="ex">{e(", ".join(r.examples))}</td>' if examples else ""
                out.append(
                    f"<tr><td><code>{e(r.field)}</code></td><td>{_tags([r.entity_type])}</td>"
                    f"<td>{'in free text' if r.origin == 'text' else 'typed column'}</td>"
                    f'<td class="num">{r.records:,} / {r.non_null:,}</td>'
                    f'<td><span class="bar-wrap"><span class="bar" style="width:{width}px"></span></span>'
                    f"{r.prevalence:.0%}</td>{ex}</tr>"
                )
            out.append("</tbody></table>")
    return "\n".join(out)


def write(path: Path, page: str) -> Path:
    """Write the page readable by its owner only: it names where personal data lives."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fd = -1
            fh.write(page)
    finally:
        if fd != -1:
            os.close(fd)
    return path


def build(
    index: Index, *, retention: RetentionReport | None, examples: bool = True, now: datetime | None = None
) -> ReportData:
    from connectors.redact import mask_url
    from discover.changes import FINISHED, previous_diff, snapshots
    from discover.index import utcnow
    from discover.inventory import inventory

    history = [s for s in snapshots(index) if s.status in FINISHED]
    changes = previous_diff(index, history[-1].run_id) if history else None
    generated = utcnow(now)
    return ReportData(
        generated_at=generated,
        index_url=mask_url(index.url),
        rows=inventory(index),
        containers=index.containers(),
        history=history,
        changes=changes,
        retention=retention,
        examples=examples,
    )


__all__ = ["ReportData", "build", "render", "write"]
