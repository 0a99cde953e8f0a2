"""The report's sections as a self-contained HTML page (inline SVG, no script, nothing fetched) and as Markdown."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from .compute import ReportData
from .sections import Section


def _table(df: pd.DataFrame, fmt: dict | None = None) -> tuple[str, str]:
    """(HTML, Markdown) of a DataFrame."""
    fmt = fmt or {}
    cells = [
        [
            fmt.get(c, str)(v) if v is not None and not (isinstance(v, float) and np.isnan(v)) else "–"
            for c, v in row.items()
        ]
        for _, row in df.iterrows()
    ]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in cells)
    md = "| " + " | ".join(map(str, df.columns)) + " |\n|" + "---|" * len(df.columns) + "\n"
    md += "".join("| " + " | ".join(v.replace("|", "\\|").replace("\n", " ") for v in row) + " |\n" for row in cells)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>', md


def _numeric(text: str) -> bool:
    """A number, an interval or a size: kept on one line."""
    return bool(text) and (text[0].isdigit() or text[0] in "+-−[") and len(text) < 48


def _cell(text: str) -> str:
    """A table cell: a number with its interval kept on one line; words after them (what a difference is taken
    against: "vs always 'DDI-effect'") wrap, so that a long label does not widen its column past the page."""
    numeric = _numeric(text)
    lead, bracket, rest = text.partition("] ")
    if numeric and bracket and "[" in lead and rest:
        return f"<td><span class=n>{html.escape(lead + ']')}</span> {html.escape(rest)}</td>"
    return f"<td{' class=n' if numeric else ''}>{html.escape(text)}</td>"


STYLE = """body{font-family:system-ui,sans-serif;max-width:1220px;margin:1.2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em;margin:0.3em 0}h2{font-size:1.25em;margin:1.1em 0 0.4em}p,li{line-height:1.4}
table{border-collapse:collapse;margin:0.6em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;
text-align:left;vertical-align:top}th{background:#f3f3f3}.n{white-space:nowrap}
figure{display:inline-block;margin:0.4em;vertical-align:top;max-width:100%}svg{max-width:100%;height:auto}
details{margin:0.5em 0}summary{cursor:pointer;font-weight:600}.scroll{overflow-x:auto}
ul.answer li{margin:0.35em 0}"""


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _lead(sentence: str) -> str:
    """A sentence whose first words up to ': ' name what it is about, those words in bold."""
    head, sep, rest = sentence.partition(": ")
    if sep and len(head) < 60:
        return f"<b>{html.escape(head)}</b>: {html.escape(rest)}"
    return html.escape(sentence)


def render_html(d: ReportData, parts: list[Section]) -> str:
    """A self-contained page (inline SVG, no script, nothing fetched)."""

    def body(sec: Section) -> str:
        out = f"<p>{html.escape(sec.text)}</p>" if sec.text else ""
        out += "".join(
            f"<figure>{svg}<figcaption>{html.escape(cap)}</figcaption></figure>" for cap, svg in sec.figures.items()
        )
        if sec.table is not None:
            out += _table(sec.table, sec.formats)[0]
        if sec.sentences:
            out += '<ul class="answer">' + "".join(f"<li>{_lead(t)}</li>" for t in sec.sentences) + "</ul>"
        return out

    shown = "".join(f"<h2>{html.escape(s.title)}</h2>{body(s)}" for s in parts if not s.folded)
    folded = "".join(
        f"<details><summary>{html.escape(s.title)}</summary>{body(s)}</details>" for s in parts if s.folded
    )
    df = d.df
    facts = (
        f"{html.escape(d.counted())} · {_n(df.dataset.nunique(), 'dataset')} · {_n(df.model.nunique(), 'model')} · "
        f"{_n(df.method.nunique(), 'method')} · seeds {sorted(df.seed.unique().tolist())} · store "
        f"<code>{html.escape(d.store_url)}</code> · {d.stamp}"
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>biotune report: '
        f"{html.escape(d.study)}</title>\n<style>{STYLE}</style></head>\n<body><h1>biotune report: "
        f"{html.escape(d.study)}</h1>\n<p>{facts}</p>\n{shown}{folded}</body></html>"
    )


def render_markdown(d: ReportData, parts: list[Section]) -> str:
    """The same sections as Markdown (figures: named, in report.html)."""

    def body(sec: Section) -> str:
        out = f"{sec.text}\n\n" if sec.text else ""
        if sec.figures:
            out += "Figures: see report.html.\n\n"
        if sec.table is not None:
            out += _table(sec.table, sec.formats)[1] + "\n"
        out += "".join(f"- {t}\n" for t in sec.sentences)
        return out

    shown = "".join(f"## {s.title}\n\n{body(s)}\n" for s in parts if not s.folded)
    folded = "".join(f"<details><summary>{s.title}</summary>\n\n{body(s)}</details>\n\n" for s in parts if s.folded)
    return f"# biotune report: {d.study}\n\n{d.counted()}; store `{d.store_url}`; {d.stamp}\n\n{shown}{folded}"
