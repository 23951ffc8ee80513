"""``index.html``: the package as a page the person opens offline and can print.

One self-contained file: inline CSS, no script, no external asset, every value escaped.
Long containers show their first rows and link to the data file that holds all of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

from export.formats import LOCATOR, MATCH, Table, csv_columns, to_json_value
from export.page_text import colon, date_time, number, words

#: Rows of one container shown on the page; the data file holds every row.
PAGE_ROWS = 200
#: Characters of one cell shown on the page (a huge note is cut; the data file has it whole).
CELL_CHARS = 2000

_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1b1b1b;margin:2em auto;
max-width:70em;padding:0 1.2em}
h1{font-size:1.7em;margin-bottom:.2em}h2{font-size:1.3em;margin-top:2em;border-bottom:2px solid #2b4c7e}
h3{font-size:1.05em;margin-top:1.4em}
.meta{color:#555}.note{background:#f3f6fb;border-left:4px solid #2b4c7e;padding:.6em .9em}
.warn{background:#fff4e5;border-left:4px solid #c77700;padding:.6em .9em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em;width:100%}
th,td{border:1px solid #c8ccd2;padding:.3em .5em;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#eef1f5}dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dt{font-weight:600}dd{margin:0}code{font-size:.85em;overflow-wrap:anywhere}
.scroll{overflow-x:auto}
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-after:avoid}tr{break-inside:avoid}
.scroll{overflow:visible}a{color:inherit;text-decoration:none}}
"""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    converted = to_json_value(value)
    if isinstance(converted, str):
        text = converted
    elif isinstance(converted, (dict, list, bool, int, float)):
        text = json.dumps(converted, ensure_ascii=False, default=str)
    else:  # inet and other driver types: their text form, as the data files write them
        text = str(converted)
    if len(text) > CELL_CHARS:
        text = text[:CELL_CHARS] + " […]"
    return escape(text)


def _anchor(text: str) -> str:
    return "f-" + "".join(ch if ch.isalnum() else "-" for ch in text)


def _list(values: Sequence[str] | None, w: dict[str, str]) -> str:
    return escape(", ".join(values)) if values else escape(w["none"])


def _processing(entries: Sequence[dict[str, Any]], lang: str, w: dict[str, str]) -> list[str]:
    out = [f'<h2 id="processing">{escape(w["processing"])}</h2>']
    if not entries:
        return [*out, f"<p>{escape(w['processing_none'])}</p>"]
    for e in entries:
        title = e["source"] + (f" / {e['container']}" if e.get("container") else "")
        origin = str(e.get("origin") or "subject")
        if origin == "subject":
            origin_text = w["origin_subject"]
        else:
            origin_text = f"{w['origin_third_party']} ({origin.partition(':')[2].strip()})"
        basis = e.get("legal_basis") or ""
        rows = [
            (w["purposes"], _list(e.get("purposes"), w)),
            (w["legal_basis"], escape(w.get(f"basis_{basis}", basis))),
            (w["categories"], _list(e.get("categories"), w)),
            (w["recipients"], _list(e.get("recipients"), w)),
            (w["retention"], escape(e.get("retention") or w["none"])),
            (w["origin"], escape(origin_text)),
            (w["automated"], escape(w["yes"] if e.get("automated_decisions") else w["no"])),
        ]
        out.append(f"<h3>{escape(title)}</h3><dl>")
        out.extend(f"<dt>{escape(colon(lang, label))}</dt><dd>{value}</dd>" for label, value in rows)
        out.append("</dl>")
    return out


def _records(tables: Sequence[Table], files: Sequence[dict[str, Any]], lang: str, w: dict[str, str]) -> list[str]:
    out = [f'<h2 id="records">{escape(w["records"])}</h2>']
    if not tables:
        return [*out, f"<p>{escape(w['records_none'])}</p>"]
    by_key = {(f["source"], f["container"], bool(f.get("reference"))): f for f in files}
    for reference in (False, True):
        chosen = [t for t in tables if (t.role != "subject") == reference]
        if reference and chosen:
            out.append(f'<h2 id="reference">{escape(w["reference"])}</h2>')
        for t in chosen:
            entry = by_key.get((t.source, t.container, reference))
            path = entry["path"] if entry else ""
            out.append(f'<h3 id="{escape(_anchor(path))}">{escape(t.source)} / {escape(t.container)}</h3>')
            out.append(f'<p class="meta">{escape(w["count"].format(n=number(lang, len(t.rows))))}</p>')
            columns = [c for c in csv_columns(t) if c not in (LOCATOR, MATCH)]
            shown = t.rows[:PAGE_ROWS]
            if len(t.rows) > PAGE_ROWS:
                link = f'<a href="{escape(path)}">{escape(path)}</a>'
                text = escape(w["shown"]).format(
                    shown=number(lang, PAGE_ROWS), total=number(lang, len(t.rows)), link=link
                )
                out.append(f'<p class="note">{text}</p>')
            out.append('<div class="scroll"><table><thead><tr>')
            out.extend(f"<th>{escape(c)}</th>" for c in columns)
            out.append("</tr></thead><tbody>")
            for row in shown:
                out.append("<tr>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>")
            out.append("</tbody></table></div>")
    return out


def _files(manifest: dict[str, Any], w: dict[str, str], lang: str) -> list[str]:
    out = [
        f'<h2 id="files">{escape(w["files"])}</h2><div class="scroll"><table><thead><tr>',
        *(f"<th>{escape(w[k])}</th>" for k in ("file", "what", "size", "checksum")),
        "</tr></thead><tbody>",
    ]
    for f in manifest.get("files", []):
        what = w["file_reference" if f.get("reference") else "file_data"].format(
            source=f["source"], container=f["container"]
        )
        redactions = f.get("redactions") or {}
        if redactions:
            what += f" ({colon(lang, w['redactions'])} " + ", ".join(f"{k} {v}" for k, v in redactions.items()) + ")"
        out.append(
            f'<tr><td><a href="{escape(f["path"])}">{escape(f["path"])}</a></td><td>{escape(what)}</td>'
            f"<td>{escape(number(lang, f['bytes']))}</td><td><code>{escape(f['sha256'])}</code></td></tr>"
        )
    for d in manifest.get("documents", []):
        out.append(
            f'<tr><td><a href="{escape(d["path"])}">{escape(d["path"])}</a></td>'
            f"<td>{escape(w['file_processing'])}</td>"
            f"<td>{escape(number(lang, d['bytes']))}</td><td><code>{escape(d['sha256'])}</code></td></tr>"
        )
    out.append(
        f'<tr><td><a href="manifest.json">manifest.json</a></td><td>{escape(w["file_manifest"])}</td>'
        "<td></td><td></td></tr>"
    )
    out.append("</tbody></table></div>")
    return out


_REASONS = {
    "matches the subject by name only": "reason_name",
    "names the subject in free text, and nothing else ties it to them": "reason_text",
    "matches by an IP address that other subjects' records also hold": "reason_ip",
}


def _review(review: Sequence[dict[str, Any]], w: dict[str, str]) -> list[str]:
    if not review:
        return []
    out = [
        f'<h2 id="review">{escape(w["review"])}</h2><p>{escape(w["review_intro"])}</p>',
        '<div class="scroll"><table><thead><tr>',
        *(f"<th>{escape(w[k])}</th>" for k in ("source", "container", "field", "kind", "value", "reason")),
        "</tr></thead><tbody>",
    ]
    for r in review:
        reason = w.get(_REASONS.get(r.get("reason", ""), ""), r.get("reason", ""))
        cells = (r["source"], r["container"], r["field"], r["entity_type"], r["masked_value"], reason)
        out.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table></div>")
    return out


def _left_out(left: Sequence[dict[str, Any]], w: dict[str, str], lang: str) -> list[str]:
    if not left:
        return []
    out = [f'<h2 id="left-out">{escape(w["left_out"])}</h2><p>{escape(w["left_out_intro"])}</p><ul>']
    for item in left:
        where = f"{item['source']} / {item['container']}"
        if item.get("field"):
            where += f" ({colon(lang, w['field'].lower())} {item['field']})"
        basis = item.get("legal_basis") or ""
        reason = w[f"left_reason_{item['reason']}"].format(basis=w.get(f"basis_{basis}", basis))
        out.append(f"<li>{escape(where)} — {escape(reason)}</li>")
    out.append("</ul>")
    return out


def render_page(
    manifest: dict[str, Any],
    tables: Sequence[Table],
    processing: Sequence[dict[str, Any]],
    *,
    lang: str,
) -> str:
    """The whole page. ``manifest`` is the manifest as written, less the page's own checksum."""
    w = words(lang)
    portability = manifest.get("purpose") == "portability"
    made = date_time(lang, str(manifest.get("generated_at", "")))
    head = (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{escape(w['title'])} — {escape(manifest['request_id'])}</title><style>{_STYLE}</style></head><body>"
    )
    body = [
        f"<h1>{escape(w['title'])}</h1>",
        f'<p class="meta">{escape(colon(lang, w["request"]))} <strong>{escape(manifest["request_id"])}</strong>'
        f" · {escape(w['made'])} {escape(made)}</p>",
        f"<p>{escape(w['intro_portability' if portability else 'intro_access'])}</p>",
        f"<p>{escape(w['how_to_read'])}</p>",
    ]
    if not manifest.get("complete", True):
        body.append(f'<p class="warn">{escape(w["complete_no"])}</p>')
    elif not manifest.get("subject", {}).get("found", True):
        body.append(f'<p class="note">{escape(w["not_found"])}</p>')
    if manifest.get("redaction", {}).get("enabled") and any(f.get("redactions") for f in manifest.get("files", [])):
        body.append(f'<p class="note">{escape(w["redacted"])}</p>')
    sections = [("processing", w["processing"]), ("records", w["records"])]
    if manifest.get("left_out"):
        sections.append(("left-out", w["left_out"]))
    sections.append(("files", w["files"]))
    if manifest.get("review"):
        sections.append(("review", w["review"]))
    body.append(f"<nav><h2>{escape(w['contents'])}</h2><ul>")
    body.extend(f'<li><a href="#{anchor}">{escape(label)}</a></li>' for anchor, label in sections)
    body.append("</ul></nav>")
    body.extend(_processing(processing, lang, w))
    body.extend(_records(tables, manifest.get("files", []), lang, w))
    body.extend(_left_out(manifest.get("left_out", []), w, lang))
    body.extend(_files(manifest, w, lang))
    body.extend(_review(manifest.get("review", []), w))
    version = manifest.get("generator", {}).get("version", "")
    body.append(f'<hr><p class="meta">{escape(w["footer"].format(version=version))}</p></body></html>\n')
    return head + "".join(body)
