"""Shared CLI output: readable tables for people, one JSON object for machines, progress bars on stderr.

Every `stats`, `eval` and `bench` command calls `emit`: a table by default, and with `--json`
exactly one JSON object on stdout (nothing else goes to stdout then).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

T = TypeVar("T")

stderr = Console(stderr=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    if value is None:
        return "-"
    return str(value)


def emit(
    result: Mapping[str, Any], *, as_json: bool, title: str = "", rows_key: str | None = None, measured: bool = False
) -> None:
    """Print `result` as one JSON object (as_json) or as a table.

    Scalars become a two-column key/value table. When rows_key names a list of dicts in result,
    those rows are printed as a second table with one column per key. `measured` (evaluations and
    benchmarks) adds `environment`: the package versions, machine and commit that produced the figures.
    """
    if measured:
        from flockid.provenance import environment

        result = {**result, "environment": environment()}
    if as_json:
        sys.stdout.write(json.dumps(_jsonable(result), sort_keys=False) + "\n")
        sys.stdout.flush()
        return
    out = Console()
    scalars = {k: v for k, v in result.items() if not isinstance(v, (list, dict)) and k != rows_key}
    if scalars:
        table = Table(title=title or None, show_header=True, header_style="bold")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for k, v in scalars.items():
            table.add_row(k, _fmt(v))
        out.print(table)
    nested = {k: v for k, v in result.items() if isinstance(v, dict)}
    for k, v in nested.items():
        sub = Table(title=k, show_header=True, header_style="bold")
        sub.add_column("key")
        sub.add_column("value", justify="right")
        for kk, vv in v.items():
            sub.add_row(str(kk), _fmt(vv) if not isinstance(vv, (dict, list)) else json.dumps(_jsonable(vv)))
        out.print(sub)
    if rows_key and isinstance(result.get(rows_key), list) and result[rows_key]:
        rows = result[rows_key]
        cols: list[str] = []
        for r in rows:
            for c in r:
                # Nested detail (a list per row) is for --json; a table cell cannot show it.
                if c not in cols and not isinstance(r[c], (list, dict)):
                    cols.append(c)
        rt = Table(title=rows_key, show_header=True, header_style="bold")
        for c in cols:
            rt.add_column(c, justify="right")
        for r in rows:
            rt.add_row(*[_fmt(r.get(c)) for c in cols])
        out.print(rt)


def progress(items: Iterable[T], *, total: int | None = None, description: str = "working") -> Iterator[T]:
    """Wrap an iterable with a progress bar on stderr (never stdout, so --json stays clean)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=stderr, transient=False, disable=not stderr.is_terminal and False) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)


def fail(message: str, code: int = 2) -> None:
    """Print an error to stderr and exit the CLI (CLI layer only; library code raises)."""
    import typer

    stderr.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)
