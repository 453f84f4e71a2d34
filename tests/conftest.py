"""Shared test set-up: reference oracles that must not silently skip in CI, and a
deterministic, fast hypothesis profile.

Tests that need PyTorch (or another oracle) call :func:`require` or use the
``torch`` fixture; both skip when the module is missing, *unless* the
environment sets ``BNBOOK_REQUIRE_ORACLES=1`` (CI does), where a missing oracle
is a failure. The same rule is applied to plain ``pytest.importorskip`` calls
for the oracle modules anywhere in the suite (see the report hooks below).
"""
import importlib
import os

import pytest

#: modules whose absence must fail the run when BNBOOK_REQUIRE_ORACLES=1
ORACLES = ("torch", "array_api_strict", "hypothesis")


def oracles_required():
    """True when the environment asks for every oracle to run (CI)."""
    return os.environ.get("BNBOOK_REQUIRE_ORACLES", "") == "1"


def require(name, reason=None):
    """Import ``name``; skip the test if it is missing, or fail when oracles are required."""
    if oracles_required():
        try:
            return importlib.import_module(name)
        except ImportError as err:
            pytest.fail(f"BNBOOK_REQUIRE_ORACLES=1 but the oracle {name!r} cannot be "
                        f"imported: {err}", pytrace=False)
    return pytest.importorskip(name, reason=reason)


@pytest.fixture
def torch():
    """The PyTorch module (CPU), float64 reference oracle; see :func:`require`."""
    return require("torch")


def _oracle_skip(excinfo):
    """The skip message if ``excinfo`` is an importorskip of an oracle module, else None."""
    if excinfo is None or not excinfo.errisinstance(pytest.skip.Exception):
        return None
    msg = str(excinfo.value)
    return msg if any(f"import '{name}'" in msg for name in ORACLES) else None


def _fail_instead(report, msg):
    report.outcome = "failed"
    report.longrepr = (f"BNBOOK_REQUIRE_ORACLES=1: an oracle test must run, not skip "
                       f"({msg})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    msg = _oracle_skip(call.excinfo) if oracles_required() and report.skipped else None
    if msg:
        _fail_instead(report, msg)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if oracles_required() and report.skipped:
        longrepr = str(report.longrepr)
        if any(f"import '{name}'" in longrepr for name in ORACLES):
            _fail_instead(report, longrepr)


try:  # a deterministic, quick hypothesis profile (CI budget: seconds, not minutes)
    from hypothesis import HealthCheck, settings
except ImportError:  # the hypothesis tests skip (or fail under BNBOOK_REQUIRE_ORACLES)
    pass
else:
    settings.register_profile(
        "bnbook", derandomize=True, max_examples=30, deadline=None, print_blob=True,
        suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "bnbook"))
