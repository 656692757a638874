"""One table model, two renderings: rich on the terminal, Markdown for the README.

Benchmarks build :class:`Table` values only; how they look is decided here once, so the
terminal and ``benchmarks/results/latest.md`` can never disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table as RichTable


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([fmt(c) for c in cells])

    def numeric(self, column: int) -> bool:
        """Right-align a column when most of its cells are figures (the first one never)."""
        cells = [row[column] for row in self.rows if column < len(row) and row[column]]
        figures = [c for c in cells if c[0].isdigit() or c[0] in "×—<+-"]
        return column > 0 and len(figures) * 2 > len(cells)


def fmt(value: object) -> str:
    """Numbers the way a reader compares them: 3 decimals for scores, fewer for big values."""
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def seconds(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms" if value >= 0.01 else f"{value * 1000:.2f} ms"
    return f"{value:.1f} s" if value < 600 else f"{value / 60:.0f} min"


def ratio(ours: float | None, base: float | None) -> str:
    """``ours / base`` as "×N" (how many times the baseline's figure ours is)."""
    if not ours or not base or math.isnan(ours) or math.isnan(base):
        return "—"
    r = ours / base
    return f"×{r:.2f}" if r < 10 else f"×{r:.0f}"


def print_tables(tables: list[Table], console: Console | None = None) -> None:
    console = console or Console()
    for table in tables:
        rich_table = RichTable(title=table.title, title_justify="left", title_style="bold")
        for i, column in enumerate(table.columns):
            rich_table.add_column(column, justify="right" if table.numeric(i) else "left", overflow="fold")
        for row in table.rows:
            rich_table.add_row(*row)
        console.print(rich_table)
        for note in table.notes:
            console.print(f"  [dim]{note}[/dim]")
        console.print()


def markdown(tables: list[Table]) -> str:
    out: list[str] = []
    for table in tables:
        out.append(f"### {table.title}\n")
        out.append("| " + " | ".join(table.columns) + " |")
        aligns = ("---:" if table.numeric(i) else "---" for i in range(len(table.columns)))
        out.append("|" + "|".join(aligns) + "|")
        for row in table.rows:
            out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        out.append("")
        out.extend(f"- {note}" for note in table.notes)
        if table.notes:
            out.append("")
    return "\n".join(out).rstrip() + "\n"
