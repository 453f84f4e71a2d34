"""Let ``{glue:text}`` format NumPy scalars under NumPy 2.

NumPy 2 writes ``repr(np.float64(0.25))`` as ``np.float64(0.25)``. myst-nb stores that
repr as the ``text/plain`` of a glued value and, for a format spec such as ``:.3f``,
calls ``float()`` on it, which fails: the number silently drops out of the sentence and
the build logs "Failed to format text/plain data". This extension unwraps such reprs
(``np.float64(x)`` -> ``x``, also ``np.int64``, ``np.float32``, ``np.str_`` ...) before
myst-nb formats them. The value itself is untouched: it is the number the cell computed.
Gluing a plain ``float(x)`` stays the better habit in a chapter.
"""

from __future__ import annotations

import re

from sphinx.application import Sphinx

_NUMPY_SCALAR_REPR = re.compile(
    r"^np\.(?:float|int|uint|complex|longdouble|clongdouble|str_|bytes_)\w*\((.*)\)$",
    re.DOTALL)


def unwrap_numpy_repr(text: str) -> str:
    """``'np.float64(0.25)'`` -> ``'0.25'``; any other text is returned unchanged."""
    match = _NUMPY_SCALAR_REPR.match(text.strip())
    return match.group(1) if match else text


def _patch(format_plain_text):
    def format_numpy_aware(text: str, fmt_spec: str) -> str:
        return format_plain_text(unwrap_numpy_repr(text), fmt_spec)

    format_numpy_aware.__wrapped__ = format_plain_text
    return format_numpy_aware


def setup(app: Sphinx) -> dict:
    # myst-nb imports the function by name into the glue role and cross-reference
    # modules, so each of the three references is replaced.
    from myst_nb.core import variables
    from myst_nb.ext.glue import crossref, roles

    if not hasattr(variables.format_plain_text, "__wrapped__"):
        patched = _patch(variables.format_plain_text)
        for module in (variables, roles, crossref):
            module.format_plain_text = patched
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
