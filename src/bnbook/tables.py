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
    fmt : str
        A ``str.format`` pattern for non-string cells.

    Returns
    -------
    str
        The table; wrap it in ``IPython.display.Markdown`` to show or glue it.
    """
    header = [str(h) for h in header]
    if not header:
        raise ValueError("markdown_table: header is empty; expected at least "
                         "one column title")
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != len(header):
            raise ValueError(f"markdown_table: row {i} has {len(row)} cells; "
                             f"expected {len(header)}, one per header column")
        lines.append("| " + " | ".join(
            c if isinstance(c, str) else fmt.format(c) for c in row) + " |")
    return "\n".join(lines)
