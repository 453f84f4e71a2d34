"""Packaging a maintainer can trust: the lock, the extras, the version, the licence, CI.

``requirements.in`` holds the top-level pins and ``requirements.txt`` is the lock compiled
from it (``make lock``); pyproject's dependencies cover what the library imports; the
``book`` extra pins what the chapters import at the lock's versions; the version is
written once (``bnbook.__version__``); the workflow runs what ``.ci/run`` runs.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
SRC = ROOT / "src" / "bnbook"


def pins(path: Path) -> dict[str, str]:
    """``{canonical name: version}`` of the ``name==version`` lines of a requirements file."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            spec = [s for s in req.specifier if s.operator == "=="]
            assert len(spec) == 1 and len(req.specifier) == 1, f"{path.name}: {line!r} is not a pin"
            found[canonicalize_name(req.name)] = spec[0].version
    return found


LOCK = pins(ROOT / "requirements.txt")


def test_lock_holds_every_top_level_pin_at_its_version():
    top = pins(ROOT / "requirements.in")
    wrong = {name: (version, LOCK.get(name)) for name, version in top.items()
             if LOCK.get(name) != version}
    assert not wrong, f"requirements.in vs requirements.txt (run `make lock`): {wrong}"
    assert {"setuptools", "wheel"} <= top.keys(), "the editable install needs both"


def test_lock_satisfies_the_package_dependencies():
    for text in PROJECT["dependencies"]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in LOCK, f"{req.name} is a dependency but not in requirements.txt"
        assert req.specifier.contains(LOCK[name]), f"lock {name}=={LOCK[name]} violates {req}"


def test_book_extra_pins_match_the_lock():
    extra = [Requirement(r) for r in PROJECT["optional-dependencies"]["book"]]
    for req in extra:
        name = canonicalize_name(req.name)
        assert str(req.specifier) == f"=={LOCK.get(name)}", f"book extra {req} vs lock"
    names = {canonicalize_name(r.name) for r in extra}
    assert {"sympy", "ipython", "myst-nb", "pandas", "ipykernel"} <= names


def imported_modules(path: Path) -> set[str]:
    """Top-level names of the absolute imports in one source file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"bnbook"}


def declared(key: str | None) -> set[str]:
    """Canonical names in the dependencies (``key=None``) or in one extra."""
    texts = PROJECT["dependencies"] if key is None else PROJECT["optional-dependencies"][key]
    return {canonicalize_name(Requirement(t).name) for t in texts}


def test_dependencies_cover_every_import_of_the_library():
    dists = packages_distributions()
    optional = {"cupy": "gpu"}  # imported only when BNBOOK_BACKEND=cupy asks for it
    missing = []
    for path in sorted(SRC.rglob("*.py")):
        # the benchmarks compare against PyTorch: the test extra provides what they need
        allowed = declared(None) | (declared("test") if "bench" in path.parts else set())
        for module in sorted(imported_modules(path)):
            if module in optional:
                assert canonicalize_name("cupy-cuda12x") in declared(optional[module])
                continue
            names = {canonicalize_name(d) for d in dists.get(module, [module])}
            if not names & allowed:
                missing.append(f"{path.relative_to(ROOT)} imports {module} ({sorted(names)})")
    assert not missing, "pyproject.toml does not declare:\n  " + "\n  ".join(missing)


def test_version_is_written_once():
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "bnbook.__version__"}
    holders = [p for p in SRC.rglob("*.py")
               if re.search(r"^__version__\s*=", p.read_text(encoding="utf-8"), re.M)]
    assert holders == [SRC / "__init__.py"], holders


def test_license_file_matches_pyproject():
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text


@pytest.mark.parametrize("path", ["build/lib/bnbook/x.py", "_build/html/index.html",
                                  ".venv/bin/python", ".venv-lock/bin/uv"])
def test_build_outputs_are_ignored_by_git(path):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
    assert done.returncode == 0, f"git does not ignore {path}"


def test_every_declared_marker_is_used_and_strict():
    options = PYPROJECT["tool"]["pytest"]["ini_options"]
    assert "--strict-markers" in options["addopts"].split()
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("*.py"))
    for marker in options["markers"]:
        name = marker.split(":")[0]
        assert f"pytest.mark.{name}" in tests, f"marker {name!r} is declared but unused"


def test_workflow_runs_the_ci_script_and_deploys_only_main():
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text("utf-8"))
    build = flow["jobs"]["build"]["steps"]
    runs = [s.get("run", "") for s in build]
    assert any(r.strip() == "bash .ci/run" for r in runs), f"build steps run {runs}"
    uploads = [s for s in build if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["if"] == "failure()"
    assert "_build/html/reports" in uploads[0]["with"]["path"]
    deploy = flow["jobs"]["deploy"]
    assert "github.ref == 'refs/heads/main'" in deploy["if"]
    assert "github.event_name == 'push'" in deploy["if"]
