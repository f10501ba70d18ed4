"""The frame every report page is poured into: the document, its Content-Security-Policy
(:data:`POLICY`), its style sheet and the tones statuses are coloured by, and how a value is
written into it (escaped, numbers grouped).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

#: How statuses are ordered and coloured: good, bad (needs a fix), warn (a rerun finishes it),
#: info, muted. A status not listed comes last, uncoloured.
TONES: Mapping[str, str] = MappingProxyType(
    {
        "created": "good",
        "updated": "good",
        "deleted": "good",
        "available": "good",
        "invalid": "bad",
        "rejected": "bad",
        "failed": "warn",
        "pending": "warn",
        "kept": "warn",
        "redeemed": "info",
        "expired": "muted",
        "missing": "bad",
        "changed": "bad",
        "not created": "muted",
        "revoked": "good",
        "not found": "muted",
    }
)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _n(value: int) -> str:
    return f"{value:,}"


#: The page loads nothing and runs nothing: the browser is told so, should a value ever slip
#: through unescaped.
POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
{body}
</body>
</html>
"""

_STYLE = """
:root { color-scheme: light; --good: #1e7b34; --bad: #b3261e; --warn: #8a5a00; --info: #1f5f9e;
  --muted: #5f6368; --line: #d9dce1; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; color: #1c1f23; background: #fff; margin: 0 auto; padding: 24px; max-width: 1000px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 32px 0 8px; border-bottom: 1px solid var(--line);
  padding-bottom: 4px; }
h3 { font-size: 1em; margin: 16px 0 4px; }
.meta span { margin-right: 1.5em; color: var(--muted); }
.verdict { font-weight: 600; padding: 8px 12px; border-radius: 6px; background: #f3f4f6; }
.verdict.good { background: #e6f4ea; color: var(--good); }
.verdict.bad { background: #fce8e6; color: var(--bad); }
.verdict.warn { background: #fef7e0; color: var(--warn); }
table { border-collapse: collapse; margin: 6px 0; }
th, td { text-align: left; padding: 3px 10px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.counts tfoot th, .counts tfoot td { font-weight: 700; border-bottom: none; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-weight: 600;
  border: 1px solid currentColor; }
.badge.good { color: var(--good); } .badge.bad { color: var(--bad); }
.badge.warn { color: var(--warn); } .badge.info { color: var(--info); }
.badge.muted, .badge.other { color: var(--muted); }
.figures { display: flex; flex-wrap: wrap; gap: 8px 28px; margin: 12px 0; }
.figures div { display: flex; flex-direction: column-reverse; }
.figures dt { color: var(--muted); font-size: .85em; }
.figures dd { margin: 0; font-size: 1.2em; font-weight: 600; }
.count { color: var(--muted); font-weight: 400; font-size: .9em; margin-left: .4em; }
.group { border-left: 3px solid var(--line); padding: 2px 0 4px 12px; margin: 12px 0; }
#refused .group { border-left-color: var(--bad); }
.fix { margin: 4px 0; } .rows { margin: 4px 0; color: #3c4043; overflow-wrap: anywhere; }
.more { color: var(--muted); font-style: italic; }
.examples { font-size: .9em; } code { font-family: ui-monospace, Menlo, Consolas, monospace;
  overflow-wrap: anywhere; }
.timeline { width: 100%; height: auto; max-width: 800px; display: block; }
.timeline .grid { stroke: var(--line); stroke-width: 1; }
.timeline text { font-size: 11px; fill: var(--muted); }
.timeline .ylabel { text-anchor: end; } .timeline .xlabel { text-anchor: middle; }
.timeline .requests { fill: #4e79a7; } .timeline .retries { fill: #f28e2b; }
.timeline .throttled { fill: var(--bad); } .timeline .failures { fill: #202124; }
.timeline .pace { fill: none; stroke: #59a14f; stroke-width: 2; }
.legend .key { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 14px;
  vertical-align: -1px; }
.legend .key:first-child { margin-left: 0; }
.legend .requests { background: #4e79a7; } .legend .retries { background: #f28e2b; }
.legend .throttled { background: var(--bad); } .legend .failures { background: #202124; }
.legend .pace { background: #59a14f; }
footer { margin-top: 40px; color: var(--muted); font-size: .85em; }
footer span { margin-right: 1.5em; }
@page { margin: 14mm 12mm; }
@media print {
  body { padding: 0; max-width: none; font-size: 11pt; }
  .group, table, .timeline { break-inside: avoid; }
  h2 { break-after: avoid; }
  .verdict, .badge, .legend .key { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""
