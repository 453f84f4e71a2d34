import pytest

from bnbook.tables import markdown_table


def test_markdown_table_formats_numbers_and_keeps_strings():
    t = markdown_table(["a", "$b$"], [["x", 0.12345], [1, "y"]])
    assert t.splitlines() == ["| a | $b$ |", "|---:|---:|",
                              "| x | 0.123 |", "| 1.000 | y |"]


def test_markdown_table_custom_format():
    assert markdown_table(["n"], [[3]], fmt="{:d}").splitlines()[-1] == "| 3 |"


def test_markdown_table_rejects_ragged_rows():
    with pytest.raises(ValueError, match="row 1 has 1 cells; expected 2"):
        markdown_table(["a", "b"], [[1, 2], [3]])


def test_markdown_table_rejects_empty_header():
    with pytest.raises(ValueError, match="header is empty"):
        markdown_table([], [])


def test_markdown_table_callable_format():
    assert markdown_table(["n", "x"], [[3, 0.5]], fmt=str).splitlines()[-1] \
        == "| 3 | 0.5 |"


def test_show_table_displays_markdown(capsys):
    from bnbook.tables import show_table
    show_table(["a"], [[1.0]])          # outside a notebook: printed repr
    assert "Markdown" in capsys.readouterr().out
