"""A downloaded chapter runs outside the repository, with only the wheel the site offers.

This is what a reader without a checkout does: take the wheel linked from the intro
page (``_build/html/bnbook-<version>-py3-none-any.whl``, copied there by
``book/_ext/bnbook_wheel.py``) and two chapters' ``.ipynb`` from the download menu
(``_build/html/_sources/book/<chapter>.ipynb``), install ``wheel[book]`` into a fresh
virtual environment outside the repository, and run the notebooks there, from a folder
outside the checkout. pip resolves with ``requirements.txt`` as constraints, so the
environment holds the book's pinned versions (and pip finds them in its cache).

Needs the built site (``make book``); skips without it, except under
``BNBOOK_REQUIRE_ORACLES=1``, where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from test_site import SITE, _unavailable

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ("backward", "errata")  # quick ones; together they import sympy, glue, pandas

# Run a notebook with nbclient inside the reader's environment, plus one appended cell
# that reports which Python and which bnbook the kernel used.
_EXECUTE = """
import json, sys, nbformat, nbclient
nb = nbformat.read(sys.argv[1], as_version=4)
nb.cells.append(nbformat.v4.new_code_cell(
    "import sys, bnbook; print(sys.executable); print(bnbook.__file__)"))
nbclient.NotebookClient(nb, kernel_name="python3", timeout=900,
                        resources={"metadata": {"path": "."}}).execute()
print(json.dumps(nb.cells[-1].outputs[0]["text"].split()))
"""


def site_wheel() -> Path:
    """The wheel in the built site, for the version of the checked-out library."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        from bnbook_wheel import wheel_name
    finally:
        sys.path.pop(0)
    return SITE / wheel_name()


def reader_env_vars(home: Path) -> dict:
    """The environment of a reader's shell: no path into the checkout, own Jupyter dirs."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "VIRTUAL_ENV", "JUPYTER_PATH", "JUPYTER_CONFIG_DIR"}}
    env["JUPYTER_DATA_DIR"] = str(home / "jupyter")
    env["JUPYTER_CONFIG_DIR"] = str(home / "jupyter-config")
    return env


def run(cmd: list, cwd: Path, env: dict, what: str) -> str:
    """Run ``cmd``; fail with its output tail when it exits non-zero; return stdout."""
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"{what} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n"
                    f"{done.stderr[-3000:]}", pytrace=False)
    return done.stdout


@pytest.fixture(scope="module")
def reader():
    """(python of a fresh venv with ``wheel[book]``, a work folder, env) outside the checkout.

    The venv (about 0.8 GB) lives in a temporary folder that is deleted afterwards.
    """
    wheel = site_wheel()
    if not wheel.is_file():
        _unavailable(f"{wheel} not found (run `make book`)")
    with tempfile.TemporaryDirectory(prefix="bnbook-reader-") as tmp:
        yield make_reader(Path(tmp), wheel)


def make_reader(home: Path, wheel: Path):
    """Create the venv under ``home`` and install ``wheel[book]`` into it."""
    assert ROOT not in home.resolve().parents, "the reader's folder must be outside the checkout"
    env = reader_env_vars(home)
    run([sys.executable, "-m", "venv", str(home / "venv")], home, env, "python -m venv")
    python = home / "venv" / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--quiet", "--no-compile",
         "-c", str(ROOT / "requirements.txt"),
         f"{wheel}[book]"], home, env, f"pip install {wheel.name}[book]")
    work = home / "work"
    work.mkdir()
    return python, work, env


@pytest.mark.book
def test_intro_links_the_wheel():
    wheel = site_wheel()
    if not (SITE / "book" / "intro.html").is_file():
        _unavailable(f"no built site at {SITE} (run `make book`)")
    assert wheel.is_file(), f"the site does not offer {wheel.name}"
    html = (SITE / "book" / "intro.html").read_text(encoding="utf-8")
    assert f'href="../{wheel.name}"' in html, "the intro page does not link the wheel"


@pytest.mark.book
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_downloaded_notebook_runs_outside_the_checkout(reader, chapter):
    python, work, env = reader
    notebook = SITE / "_sources" / "book" / f"{chapter}.ipynb"
    assert notebook.is_file(), f"the site offers no {notebook.name}"
    shutil.copy(notebook, work / notebook.name)
    out = run([str(python), "-c", _EXECUTE, notebook.name], work, env,
              f"running the downloaded {notebook.name} in a fresh venv")
    kernel_python, bnbook_file = json.loads(out.strip().splitlines()[-1])
    venv = python.parent.parent
    assert Path(kernel_python).parent.parent == venv, f"the kernel ran {kernel_python}"
    assert venv in Path(bnbook_file).parents, f"bnbook came from {bnbook_file}"
