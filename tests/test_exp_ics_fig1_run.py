"""The Figure 1 results driver (bnbook.experiments.ics_fig1_run) on tiny settings."""
import copy
import json

import numpy as np
import pytest

from bnbook.experiments import ics_fig1, ics_fig1_run as run

TINY = dict(steps=20, record_every=10)
PAIRS = [("plain", 1.0), ("plain", 3.0), ("bn", 1.0), ("bn", 3.0)]


@pytest.fixture(scope="module")
def doc(tmp_path_factory):
    out = tmp_path_factory.mktemp("fig1") / "r.json"
    assert run.main(["--seeds", "0", "1", "--steps", "20", "--record-every",
                     "10", "--out", str(out)]) == 0
    return json.loads(out.read_text()), out


def test_driver_writes_a_file_that_passes_the_schema(doc):
    d, _ = doc
    run.check_results(d)
    assert "--out" in d["command"] and d["settings"]["seeds"] == [0, 1]
    assert d["settings"]["lr"] == [list(p) for p in PAIRS]
    assert list(d["runs"]) == ["plain@1", "plain@3", "bn@1", "bn@3"]
    for v in d["runs"]:
        p = np.array(d["runs"][v]["unit_percentiles"])      # (S, R, 3)
        assert p.shape == (2, 3, 3)
        assert np.all(p[..., 0] <= p[..., 1]) and np.all(p[..., 1] <= p[..., 2])
        assert np.array(d["runs"][v]["loss"]).shape == (2, 2)


def test_summary_matches_the_trainer(doc):
    d, _ = doc
    from bnbook.experiments.common import flat_mnist
    h = ics_fig1.train_fig1("bn", 20, 1.0, flat_mnist(),
                            seeds=(0, 1), record_every=10, eval_every=10)
    s = d["runs"]["bn@1"]
    np.testing.assert_allclose(s["test_acc"], h["test_acc"])
    np.testing.assert_allclose(s["unit_percentiles"],
                               h["percentiles"][:, :, :, 0], rtol=1e-4)
    np.testing.assert_allclose(
        s["loss"], h["loss"].reshape(2, 2, 10).mean(2), rtol=1e-4)
    p = h["percentiles"]
    width = p[:, :, 2] - p[:, :, 0]                          # (S, R, D)
    np.testing.assert_allclose(s["spread"], width.mean(2), rtol=1e-4)
    moved = np.abs(p[:, 1:, 1] - p[:, :-1, 1]) / width[:, 1:]
    np.testing.assert_allclose(s["relative_drift"], moved.mean(2), rtol=1e-4)


def test_resume_keeps_finished_networks(doc, tmp_path, monkeypatch):
    d, out = doc
    path = tmp_path / "r.json"
    path.write_text(out.read_text())

    def no_training(*args, **kwargs):
        raise AssertionError("a finished network was trained again")
    monkeypatch.setattr(ics_fig1, "train_fig1", no_training)
    again = run.full_length(path, [0, 1], 20, PAIRS, "cmd", 10)
    assert again["runs"] == d["runs"]
    with pytest.raises(AssertionError, match="trained again"):
        run.full_length(path, [0, 1], 20, PAIRS[:3], "cmd", 10)


def test_schema_refuses_bad_files(doc):
    d, _ = doc
    bad = copy.deepcopy(d)
    del bad["machine"]
    with pytest.raises(ValueError, match="missing top-level keys"):
        run.check_results(bad)
    bad = copy.deepcopy(d)
    bad["runs"]["plain@1"]["test_acc"][0].pop()
    with pytest.raises(ValueError, match="plain@1: test_acc is ragged"):
        run.check_results(bad)
    bad = copy.deepcopy(d)
    for row in bad["runs"]["plain@3"]["loss"]:
        row.pop()
    with pytest.raises(ValueError, match=r"plain@3: loss has shape \(2, 1\)"):
        run.check_results(bad)
    bad = copy.deepcopy(d)
    bad["runs"]["bn@3"]["train_acc"][1][0] = 1.5
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        run.check_results(bad)
    bad = copy.deepcopy(d)
    del bad["runs"]["bn@1"]
    with pytest.raises(ValueError, match="no run for network 'bn@1'"):
        run.check_results(bad)
    bad = copy.deepcopy(d)
    bad["settings"]["lr"][0][0] = "resnet"
    with pytest.raises(ValueError, match="'resnet' not in"):
        run.check_results(bad)
    bad = copy.deepcopy(d)
    del bad["settings"]["steps"]
    with pytest.raises(ValueError, match="settings lacks"):
        run.check_results(bad)


def test_steps_must_be_a_multiple_of_the_record_interval(tmp_path):
    with pytest.raises(ValueError, match="multiple of record_every"):
        run.full_length(tmp_path / "x.json", [0], 25, PAIRS, "cmd", 10)
