"""Markdown tables for the chapters' results (one helper instead of a copy per page)."""


def markdown_table(header, rows, fmt="{:.3f}"):
    """Rows of cells as a GitHub-flavoured Markdown table.

    Parameters
    ----------
    header : sequence of str
        Column titles (``$math$`` is fine: MyST renders it).
    rows : sequence of sequences
        One sequence per row, as long as ``header``. A string cell is shown as
        it is; any other cell is formatted with ``fmt``.
    fmt : str or callable
        A ``str.format`` pattern for non-string cells, or a function from a
        cell to its text (``str`` shows every cell as Python prints it).

    Returns
    -------
    str
        The table; wrap it in ``IPython.display.Markdown`` to show or glue it.
    """
    header = [str(h) for h in header]
    if not header:
        raise ValueError("markdown_table: header is empty; expected at least "
                         "one column title")
    cell = fmt if callable(fmt) else fmt.format
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != len(header):
            raise ValueError(f"markdown_table: row {i} has {len(row)} cells; "
                             f"expected {len(header)}, one per header column")
        lines.append("| " + " | ".join(
            c if isinstance(c, str) else cell(c) for c in row) + " |")
    return "\n".join(lines)


def show_table(header, rows, fmt="{:.3f}"):
    """Display :func:`markdown_table` ``(header, rows, fmt)`` in a notebook."""
    from IPython.display import Markdown, display
    display(Markdown(markdown_table(header, rows, fmt)))
