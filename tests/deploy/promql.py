"""Just enough PromQL reading for the deployment tests: which metric names and which
label matchers an expression uses, and the metric contract of docs/design.md "Metrics".

Not a parser: strings, label matchers, ranges and grouping clauses are blanked out, and
the identifiers left over that are not functions or keywords are metric names.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_KEYWORDS = {"and", "or", "unless", "bool", "by", "without", "on", "ignoring",
             "group_left", "group_right", "offset", "inf", "nan", "atan2"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSET = re.compile(r"\boffset\s+-?\w+")
_IDENT = re.compile(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_SELECTOR = re.compile(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^{}]*)\}")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords and labels excluded)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.groups()
        if call or name in _KEYWORDS:
            continue
        names.add(name)
    return names


def selector_labels(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names matched) for each `name{...}` selector."""
    text = _STRING.sub('""', expr)
    return [(name, set(_MATCHER_LABEL.findall(body))) for name, body in _SELECTOR.findall(text)]


@dataclass(frozen=True)
class MetricContract:
    """The worker metrics docs/design.md fixes: exposed series name -> its labels."""
    series: dict[str, frozenset[str]]
    histograms: frozenset[str]


def design_metrics(design_md: Path) -> MetricContract:
    """Parse the "## Metrics" section of docs/design.md.

    Bullets name metrics in backticks, with labels in braces inside the backticks
    (`slaproc_breaches_total{provider,...}`) or right after the word "histogram"
    (`slaproc_first_response_seconds` histogram {provider,plan}). A histogram exposes
    <name>_bucket (plus le), <name>_sum and <name>_count.
    """
    text = design_md.read_text()
    match = re.search(r"^## Metrics[^\n]*\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if not match:
        raise ValueError(f"no '## Metrics' section in {design_md}")
    series: dict[str, frozenset[str]] = {}
    histograms = set()
    for name, inner, after in re.findall(
            r"`(slaproc_[a-z0-9_]+)(?:\{([^}]*)\})?`([^`]*)", match.group(1)):
        labels = inner
        is_histogram = re.match(r"\s*histogram\b", after) is not None
        if is_histogram and not labels:
            outer = re.match(r"\s*histogram\s*\{([^}]*)\}", after)
            labels = outer.group(1) if outer else ""
        label_set = frozenset(part.strip() for part in labels.split(",") if part.strip())
        if is_histogram:
            histograms.add(name)
            series[name + "_bucket"] = label_set | {"le"}
            series[name + "_sum"] = label_set
            series[name + "_count"] = label_set
        else:
            series[name] = label_set
    return MetricContract(series, frozenset(histograms))


#: Series every Prometheus setup has, or prometheus_client's default collectors export.
STANDARD_PREFIXES = ("process_", "python_gc_", "python_info", "scrape_")
STANDARD_NAMES = {"up", "ALERTS", "ALERTS_FOR_STATE"}
#: Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"job", "instance"}


def is_standard(name: str) -> bool:
    return name in STANDARD_NAMES or name.startswith(STANDARD_PREFIXES)
