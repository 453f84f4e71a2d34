"""bnbook.experiments.lenet: seed summaries, the rate range, the full-scale results file."""
import copy
import json
from pathlib import Path

import numpy as np
import pytest
from idx_files import write_idx_set

from bnbook.experiments import lenet as exp

RESULTS = Path(__file__).resolve().parents[1] / "results" / "lenet_fashion_mnist.json"


def test_seed_spread_is_mean_min_max_over_axis_0():
    mean, lo, hi = exp.seed_spread([[1.0, 5.0], [3.0, 2.0], [2.0, 8.0]])
    np.testing.assert_allclose(mean, [2.0, 5.0])
    np.testing.assert_allclose(lo, [1.0, 2.0])
    np.testing.assert_allclose(hi, [3.0, 8.0])
    with pytest.raises(ValueError, match="one row per seed"):
        exp.seed_spread([])


def test_trained_range_needs_every_seed_and_an_interior_range():
    rates = [0.01, 0.1, 1.0, 10.0]
    accs = [[0.2, 0.3], [0.95, 0.91], [0.97, 0.89], [0.1, 0.1]]
    # 1.0 fails: one seed below 0.9
    assert exp.trained_range(rates, accs, 0.9) == [0.1]
    with pytest.raises(ValueError, match="largest rate of the grid trains"):
        exp.trained_range(rates, [[0.2], [0.95], [0.95], [0.95]], 0.9)
    with pytest.raises(ValueError, match="smallest rate of the grid trains"):
        exp.trained_range(rates, [[0.95], [0.95], [0.2], [0.2]], 0.9)
    with pytest.raises(ValueError, match="no rate of the grid trains"):
        exp.trained_range(rates, np.zeros((4, 3)), 0.9)
    with pytest.raises(ValueError, match="increasing rates"):
        exp.trained_range(rates[::-1], accs, 0.9)
    with pytest.raises(ValueError, match="shape"):
        exp.trained_range(rates, np.zeros((3, 2)), 0.9)


def run_driver(data, out, seeds=("0", "1", "2")):
    argv = ["--data", str(data), "--epochs", "1", "--lr", "0.1",
            "--seeds", *seeds, "--out", str(out)]
    assert exp.main(argv) == 0
    return json.loads(out.read_text()), argv


def test_the_command_writes_a_results_file_the_chapter_can_read(tmp_path):
    out = tmp_path / "results" / "r.json"
    doc, argv = run_driver(write_idx_set(tmp_path / "idx"), out)
    assert exp.check_results(doc) is doc
    assert doc["command"] == " ".join(["python -m bnbook.experiments.lenet", *argv])
    settings = doc["settings"]
    assert settings["seeds"] == [0, 1, 2] and settings["epochs"] == 1
    assert (settings["n_train"], settings["n_test"]) == (70, 30)
    assert settings["standardized"] and settings["init"] == "pytorch"
    assert {"cpu_count", "platform", "load_average"} <= set(doc["machine"])
    runs = doc["runs"]
    for model in exp.MODELS:
        for seed in "012":
            run = runs[model][seed]
            assert all(len(run[key]) == 1 for key in exp.RUN_KEYS)
            assert 0 <= run["test_acc"][0] <= 1 and run["train_loss"][0] > 0
    # the seed sets the weights: different seeds, different results
    assert runs["lenet"]["0"]["train_loss"] != runs["lenet"]["1"]["train_loss"]
    assert runs["lenet"]["0"]["train_loss"] != runs["lenet-bn"]["0"]["train_loss"]


def test_a_stopped_command_resumes_and_keeps_finished_runs(tmp_path):
    data, out = write_idx_set(tmp_path / "idx"), tmp_path / "r.json"
    first, _ = run_driver(data, out, seeds=("0",))
    assert first["settings"]["seeds"] == [0]
    marked = copy.deepcopy(first)
    marked["runs"]["lenet"]["0"]["seconds"] = [123.0]       # kept, not redone
    out.write_text(json.dumps(marked))
    second, _ = run_driver(data, out, seeds=("0", "1"))
    assert second["settings"]["seeds"] == [0, 1]
    assert second["runs"]["lenet"]["0"]["seconds"] == [123.0]
    assert "1" in second["runs"]["lenet-bn"]


def test_check_results_names_the_problem():
    doc = {"command": "c", "date": "d", "bnbook_version": "v", "numpy_version": "n",
           "machine": {}, "settings": dict(seeds=[0], epochs=2, lr=0.1, n_train=5,
                                           n_test=5, data="x"),
           "runs": {m: {"0": {k: [0.5, 0.5] for k in exp.RUN_KEYS}}
                    for m in exp.MODELS}}
    exp.check_results(doc)
    bad = copy.deepcopy(doc)
    del bad["date"]
    with pytest.raises(ValueError, match="missing top-level keys"):
        exp.check_results(bad)
    bad = copy.deepcopy(doc)
    bad["runs"]["lenet-bn"]["0"]["test_acc"] = [0.5]
    with pytest.raises(ValueError, match="lenet-bn seed 0: test_acc has 1"):
        exp.check_results(bad)
    bad = copy.deepcopy(doc)
    bad["runs"]["lenet"]["0"]["test_acc"] = [0.5, 1.5]
    with pytest.raises(ValueError, match="out of range"):
        exp.check_results(bad)
    bad = copy.deepcopy(doc)
    bad["settings"]["seeds"] = [0, 1]
    with pytest.raises(ValueError, match="no run for model lenet, seed 1"):
        exp.check_results(bad)


def test_the_committed_results_file_is_the_full_scale_run():
    doc = exp.check_results(json.loads(RESULTS.read_text()))
    settings = doc["settings"]
    assert settings["n_train"] == 60000 and settings["n_test"] == 10000
    assert settings["epochs"] >= 3 and settings["seeds"] == [0, 1, 2]
    assert "fashion-mnist" in settings["data"]
    assert doc["command"].startswith("python -m bnbook.experiments.lenet ")
