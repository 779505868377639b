"""Small HTML builders shared by the report's sections (everything escaped here)."""

from __future__ import annotations

from html import escape
from typing import Any


def e(value: Any) -> str:
    return escape("" if value is None else str(value))


def tok(value: Any, cls: str = "tok") -> str:
    """A token that must never be split across lines (a file:line, a fingerprint, a hash)."""
    return f'<span class="{cls}">{e(value)}</span>'


def kv(rows: list[tuple[str, str]]) -> str:
    """A definition list; values are HTML already."""
    return '<dl class="kv">' + "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def table(
    head: list[str],
    rows: list[list[str]],
    *,
    num: set[int] | None = None,
    widths: list[int] | None = None,
    cls: str = "",
) -> str:
    """A table whose cells are HTML already; `widths` in percent fix the layout to the page."""
    num = num or set()
    out = [f'<table class="{cls}">' if cls else "<table>"]
    if widths:
        out.append("<colgroup>" + "".join(f'<col style="width:{w}%">' for w in widths) + "</colgroup>")
    out.append("<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>")
    for row in rows:
        cells = "".join(
            f'<td class="num">{c}</td>' if i in num else f"<td>{c}</td>" for i, c in enumerate(row)
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def size(n: Any) -> str:
    if not isinstance(n, int) or isinstance(n, bool):
        return ""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def path_html(path: Any) -> str:
    """A path that wraps after a separator, and inside a name only when one name is wider than
    the column (a file name can be 255 bytes)."""
    return '<span class="path">' + "<wbr>".join(e(part) for part in _split_path(str(path or ""))) + "</span>"


def _split_path(text: str) -> list[str]:
    parts, current = [], ""
    for ch in text:
        current += ch
        if ch in "/\\":
            parts.append(current)
            current = ""
    if current:
        parts.append(current)
    return parts or [""]


def when_html(text: str) -> str:
    """`2026-12-02 01:41:05` from an RFC 3339 time, date and time each kept whole."""
    if len(text) < 19:
        return e(text)
    return f'<span class="line">{tok(text[:10])}</span><span class="line">{tok(text[11:19])}</span>'
