"""Self-contained HTML pages: figures embedded as base64 PNG, small tables, no external assets."""

from __future__ import annotations

import base64
import dataclasses
import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from landsight.outputs import atomic_path

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
.figs{display:flex;flex-wrap:wrap;gap:1rem}.figs figure{margin:0;flex:1 1 320px}
.figs img{width:100%;border:1px solid #ccc}figcaption{font-size:.85rem;color:#555}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}code,pre{background:#f6f6f6;padding:.1rem .3rem}
pre{padding:.6rem;overflow-x:auto}.note{color:#555;font-size:.9rem}
"""


@dataclasses.dataclass
class Section:
    """A heading with optional text, figures (PNG paths with captions), a table and preformatted text."""

    title: str
    text: str = ""
    figures: Sequence[tuple[Path, str]] = ()
    table: Sequence[Sequence[object]] = ()
    pre: str = ""


def _figure(path: Path, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _table(rows: Sequence[Sequence[object]]) -> str:
    head, *body = rows
    out = ["<table><tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in body]
    return "".join(out) + "</table>"


def render_page(title: str, intro: str, sections: Sequence[Section]) -> str:
    """The page as a string."""
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>"]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.text:
            parts.append(f"<p>{html.escape(section.text)}</p>")
        if section.figures:
            parts.append("<div class='figs'>" + "".join(_figure(p, c) for p, c in section.figures) + "</div>")
        if section.table:
            parts.append(_table(section.table))
        if section.pre:
            parts.append(f"<pre>{html.escape(section.pre)}</pre>")
    parts.append("</body></html>")
    return "".join(parts)


def fmt(value: Any) -> str:
    """A table cell: floats to 4 significant digits, None empty."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[list[str]]:
    """Rows for `Section.table`: the header, then formatted cells."""
    return [list(header), *([fmt(c) for c in row] for row in rows)]


def report_page(title: str, intro: str, sections: Sequence[Section], links: dict[str, str],
                provenance: dict[str, Any]) -> str:
    """A page with a line of links under the title and provenance (as JSON) at the end."""
    page = render_page(title, intro, [*sections, Section("Provenance", pre=json.dumps(provenance, indent=2))])
    nav = " · ".join(f'<a href="{html.escape(href)}">{html.escape(text)}</a>' for text, href in links.items())
    return page.replace("</h1>", f"</h1><p>{nav}</p>", 1)


def write_page(path: str | Path, title: str, intro: str, sections: Sequence[Section]) -> None:
    """Write the page atomically (replacing an older one: callers check `overwrite` for the whole run)."""
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(render_page(title, intro, sections), encoding="utf-8")
