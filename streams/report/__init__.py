"""`slaproc report` and the worker's report page (SPEC §15): one customer's month for a person.

`build` gathers the core state (a replay of a file, or a worker's processors) into a
`policies.report.MonthReport`; `html` and `tabular` render it."""
from __future__ import annotations

from typing import Callable

from policies.report import MonthReport
from streams.report.html import render_html
from streams.report.tabular import render_csv, render_json

RENDERERS: dict[str, Callable[[MonthReport], str]] = {"html": render_html, "csv": render_csv, "json": render_json}
