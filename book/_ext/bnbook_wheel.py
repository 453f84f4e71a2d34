"""Offer the bnbook wheel for download, so a downloaded chapter runs outside a checkout.

``make book`` builds the wheel into ``_build/dist`` before the site (``make wheel``).
This extension copies ``bnbook-<version>-py3-none-any.whl`` (the version of the
installed package, ``bnbook.__version__``) into the site's root and defines the role

    {bnbook-wheel}`text`

a link to that file from any page, where ``{}`` in ``text`` stands for the file name.
A build without the wheel warns (and fails under ``-W``): the intro page would link to
a missing file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


def wheel_name() -> str:
    """The file name of the bnbook wheel for the installed version."""
    import bnbook

    return f"bnbook-{bnbook.__version__}-py3-none-any.whl"


def wheel_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{bnbook-wheel}`text```: a link to the wheel at the site's root."""
    env = inliner.document.settings.env
    up = "../" * env.docname.count("/")
    filename = wheel_name()
    label = text.replace("{}", filename)
    node = nodes.reference(rawtext, "", nodes.literal(label, label), refuri=up + filename,
                           classes=["bnbook-wheel"])
    return [node], []


def copy_wheel(app: Sphinx, exception) -> None:
    """``build-finished`` handler: put the wheel from ``_build/dist`` into the site."""
    if exception is not None or app.builder.format != "html":
        return
    wheel = Path(app.outdir).parent / "dist" / wheel_name()
    if not wheel.is_file():
        logger.warning(f"{wheel} not found: run `make wheel` (or `make book`) so that the "
                       "site can offer it", type="bnbook", subtype="wheel")
        return
    shutil.copy2(wheel, Path(app.outdir) / wheel.name)


def setup(app: Sphinx) -> dict:
    app.add_role("bnbook-wheel", wheel_role)
    app.connect("build-finished", copy_wheel)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
