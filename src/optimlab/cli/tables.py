"""compare's and judge's headline table fitted to the terminal: secondary columns go first, no cell is cut.

The full table (~150 columns) wraps every row in a 100-column terminal and rich cuts cells to "…". Here
the columns a reader can spare are dropped, in SECONDARY's order, until the table fits; what was
dropped is named on one line under it, and `--wide` (or report.md, which is always complete) shows all.
Cells are never cut: a table still too wide after every drop folds its cells onto more lines.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from rich import box
from rich.table import Table
from rich.text import Text

# (header, what to do when the terminal is too narrow), in the order they are given up:
# "drop" removes the column, "short" keeps a cell's first word(s) before " [" (the count, not its CI)
SECONDARY: tuple[tuple[str, str], ...] = (
    ("p (paired t)", "drop"),  # p Holm decides; the raw p is in report.md
    ("wins/seeds", "drop"),
    ("step ms", "drop"),
    ("failed [exact 95% CI]", "short"),
    ("runs", "drop"),  # the n of the failed column's k/n
    ("MDE (80% power)", "drop"),  # judge's column
)


class FittedTable(NamedTuple):
    table: Any  # rich.table.Table
    width: int  # the columns it needs with no cell wrapped
    dropped: tuple[str, ...]  # headers dropped or shortened to fit


def _short(text: str) -> str:
    return text.split(" [", 1)[0]


def _column_width(header: str, cells: Sequence[str]) -> int:
    """The width a column needs with no cell wrapped; its header may wrap at spaces."""
    words = [Text(w).cell_len for w in header.split()] or [0]
    return max([max(words), *(Text(c).cell_len for c in cells)])


def _measure(table: Any) -> int:
    from rich.console import Console

    return int(Console(width=10_000, file=io.StringIO()).measure(table).maximum)


def table_width(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """The columns the compact table takes with no cell wrapped (headers wrapped at spaces), as rich draws it."""
    return _measure(_table("", headers, rows, exact=True, compact=True))


def _table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], exact: bool, compact: bool) -> Any:
    """The rich table. compact: no outer frame or edge padding (the layout for a narrow terminal); exact:
    every column exactly as wide as its widest cell (or header word), so no cell wraps; else cells fold
    onto more lines where the console is too narrow, never "…"."""
    # plain Text, not markup: "[exact 95% CI]" in a header or a label is text, not a rich style tag
    style: dict[str, Any] = {"box": box.SIMPLE_HEAD, "show_edge": False, "pad_edge": False} if compact else {}
    table = Table(title=Text(title), title_justify="left", **style)
    for i, h in enumerate(headers):
        width = _column_width(h, [str(r[i]) for r in rows]) if exact else None
        justify: Literal["left", "right"] = "right" if i > 0 else "left"
        table.add_column(Text(h), justify=justify, min_width=width, max_width=width, overflow="fold", no_wrap=i == 0)
    for r in rows:
        table.add_row(*(Text(str(c)) for c in r))
    return table


def fit_columns(
    headers: Sequence[str], rows: Sequence[Sequence[str]], width: int | None
) -> tuple[list[str], list[list[str]], tuple[str, ...]]:
    """headers and rows with secondary columns given up until the table fits `width` (None: keep all)."""
    hs, rs = list(headers), [[str(c) for c in r] for r in rows]
    dropped: list[str] = []
    for header, action in SECONDARY:
        if width is None or table_width(hs, rs) <= width:
            break
        if header not in hs:
            continue
        i = hs.index(header)
        if action == "drop":
            hs, rs = hs[:i] + hs[i + 1 :], [r[:i] + r[i + 1 :] for r in rs]
        else:
            hs[i] = _short(hs[i])
            rs = [r[:i] + [_short(r[i])] + r[i + 1 :] for r in rs]
        dropped.append(header if action == "drop" else f"{_short(header)} CI")
    return hs, rs, tuple(dropped)


def fitted_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], width: int | None) -> FittedTable:
    """The headline table for a console `width` columns wide (None: every column, as wide as it needs).

    A table that fits is drawn as every rich table is; one that does not goes compact, then gives up
    secondary columns until it fits."""
    full = _table(title, headers, rows, exact=False, compact=False)
    natural = _measure(full)
    if width is None or natural <= width:
        return FittedTable(full, natural, ())
    hs, rs, dropped = fit_columns(headers, rows, width)
    needed = table_width(hs, rs)
    return FittedTable(_table(title, hs, rs, exact=needed <= width, compact=True), needed, dropped)


def print_fitted(console: Any, title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], wide: bool) -> None:
    """Print the table fitted to `console` (every column with wide=True), then one line naming what was dropped."""
    fitted = fitted_table(title, headers, rows, None if wide else console.width)
    if wide:  # rich caps a print's width at the console's: widen the console for this one table
        narrow, console.width = console.width, max(console.width, fitted.width)
        console.print(fitted.table)
        console.width = narrow
    else:
        console.print(fitted.table)
    if fitted.dropped:
        console.print(
            f"(narrow terminal: not shown: {', '.join(fitted.dropped)}; --wide shows every column, report.md has them)"
        )
