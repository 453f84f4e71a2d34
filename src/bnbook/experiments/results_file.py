"""The committed results files of the full-scale commands (``results/*.json``).

Each file holds the command that made it, the date, the library and NumPy
versions, facts about the machine, the settings and the runs; it is rewritten
atomically after every run, so a stopped command leaves a readable file.
"""
import datetime
import json
import os
import platform
from pathlib import Path

import numpy as np


def machine_facts():
    """Facts about this machine for a results file (platform, CPUs, load)."""
    return dict(platform=platform.platform(), machine=platform.machine(),
                processor=platform.processor() or "unknown",
                cpu_count=os.cpu_count(), python=platform.python_version(),
                load_average=list(os.getloadavg()))


def write_results(out, command, settings, runs, check=None, **json_kw):
    """Write the results document of ``settings`` and ``runs`` to ``out``.

    ``check``: a schema check called on the document before it is written
    (it raises on a bad one); ``json_kw``: passed to :func:`json.dumps`.
    Returns the document.
    """
    from .. import __version__
    doc = dict(command=command, bnbook_version=__version__,
               date=datetime.datetime.now(datetime.timezone.utc)
               .isoformat(timespec="seconds"),
               numpy_version=np.__version__, machine=machine_facts(),
               settings=settings, runs=runs)
    if check is not None:
        check(doc)
    tmp = Path(out).with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, **json_kw) + "\n")
    os.replace(tmp, out)
    return doc
