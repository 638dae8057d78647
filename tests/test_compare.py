"""``keras-lookahead compare`` (keras_lookahead/compare.py): the README's main job.

It must compare fairly (every optimizer of a seed starts from the same weights and sees the
same batches: Lookahead with alpha = 1 and NestedLookahead with h = 1 then train exactly as the
bare optimizer), actually use Lookahead (alpha = 0.5 differs), and write what it says it
writes. It trains with the Keras ``compat.keras_module()`` picks (Keras 3, tf_keras, tf.keras),
so it runs once per env: in the run with the default code path.
"""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_lookahead import compare


@pytest.fixture
def default_run(stack, request):
    if stack.family == "standalone":
        pytest.skip("compare trains with tf.keras or Keras 3, never standalone Keras "
                    "(this stack: {})".format(stack.label))
    options = request.config.getoption
    if options("--compile") != "default" or options("--legacy-optimizer") \
            or options("--tf-mode") != "default":
        pytest.skip("compare picks its own code path: tested in this env's default run "
                    "(this run: {})".format(stack.label))
    return stack


def _blobs(path, n=96, features=5, classes=3):
    """A small, learnable, shuffled 3-class problem, as compare's --data takes it."""
    rng = np.random.RandomState(1)
    y = np.arange(n) % classes
    centers = rng.randn(classes, features) * 2.0
    x = (centers[y] + rng.randn(n, features)).astype("float32")
    np.savez(path, x=x, y=y)
    return path


def _run(tmp_path, *argv):
    out = str(tmp_path / "out")
    plot = () if os.environ.get("KLA_PLOT") else ("--no-plot",)
    summary = compare.main(["--data", _blobs(str(tmp_path / "blobs.npz")), "--epochs", "2",
                            "--batch-size", "16", "--hidden", "8", "--out", out] +
                           list(plot) + list(argv))
    return summary, out


def _history(summary, name, seed):
    run, = [r for r in summary["runs"] if r["optimizer"] == name and r["seed"] == seed]
    return run["history"]


def test_same_start_for_every_optimizer(default_run, tmp_path, capsys):
    """alpha = 1 (and h = 1) is the bare optimizer: every epoch's numbers are the bare ones,
    so every optimizer of a seed started from the same weights and batch order."""
    names = ["sgd", "lookahead-sgd", "nested-sgd"]
    summary, out = _run(tmp_path, "--optimizers", ",".join(names), "--seeds", "2",
                        "--alpha", "1", "--h", "1", "--eval-weights", "fast")
    for seed in (0, 1):
        bare = _history(summary, "sgd", seed)
        for name in names[1:]:
            for key in ("loss", "val_loss", "val_accuracy"):
                np.testing.assert_allclose(_history(summary, name, seed)[key], bare[key],
                                           rtol=1e-4, err_msg="{} {}".format(name, key))
    assert _history(summary, "sgd", 0)["loss"] != _history(summary, "sgd", 1)["loss"]

    printed = capsys.readouterr().out
    assert "[6/6] nested-sgd" in printed and "mean ± std over 2 seeds" in printed
    with open(os.path.join(out, "runs.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 2 * 2 and tuple(rows[0]) == compare.COLUMNS
    with open(os.path.join(out, "summary.json")) as f:
        written = json.load(f)
    for row in written["table"]:
        finals = [float(r["val_loss"]) for r in rows
                  if r["optimizer"] == row["optimizer"] and r["epoch"] == "2"]
        assert row["seeds"] == 2
        np.testing.assert_allclose(row["val_loss_mean"], np.mean(finals), rtol=1e-5)
        np.testing.assert_allclose(row["val_loss_std"], np.std(finals), rtol=1e-4, atol=1e-7)
        assert row["optimizer"] in printed.split("mean ± std")[1]
    if os.environ.get("KLA_PLOT"):  # the env that installs matplotlib
        with open(os.path.join(out, "curves.png"), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_lookahead_changes_the_run(default_run, tmp_path):
    summary, _ = _run(tmp_path, "--optimizers", "sgd,lookahead-sgd", "--seeds", "1")
    bare, lookahead = _history(summary, "sgd", 0), _history(summary, "lookahead-sgd", 0)
    assert np.max(np.abs(np.subtract(bare["loss"], lookahead["loss"]))) > 1e-4


@pytest.mark.parametrize("argv,message", [
    (["--optimizers", "sgd,lookahead-rmsprop"], "base one of sgd, adam, variant one of "
                                                "lookahead, nested, pullback, reset. "
                                                "Received: 'lookahead-rmsprop'"),
    (["--optimizers", "sgd,sgd"], "each once"),
    (["--epochs", "0"], "must be > 0. Received: 0"),
    (["--val-fraction", "1.5"], "must be in (0, 1). Received: 1.5"),
])
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        compare.main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_data_file(tmp_path):
    path = str(tmp_path / "bad.npz")
    np.savez(path, x=np.zeros((4, 2)), labels=np.zeros(4))
    with pytest.raises(SystemExit, match=r"`--data` must be an \.npz with arrays x and y\. "
                                         r"Received: .*bad\.npz with arrays \['x', 'labels'\]"):
        compare.load_data(path, 0.3)
    np.savez(path, x=np.zeros((4, 2)), y=np.array([0.5, 1, 0, 1]))
    with pytest.raises(SystemExit, match=r"`y` must hold one integer label per sample"):
        compare.load_data(path, 0.3)


def test_split_is_stratified_and_scaled(tmp_path):
    """Images are flattened and scaled to [0, 1], one-hot labels become integers, and each
    class gives the same share to validation."""
    path = str(tmp_path / "images.npz")
    rng = np.random.RandomState(0)
    np.savez(path, x=rng.randint(0, 256, size=(48, 4, 4)), y=np.eye(4)[np.arange(48) % 4])
    x_train, y_train, x_val, y_val, description = compare.load_data(path, 0.25)
    assert x_train.shape == (36, 16) and x_val.shape == (12, 16)
    assert 0.9 < max(x_train.max(), x_val.max()) <= 1.0
    assert np.bincount(y_val).tolist() == [3, 3, 3, 3]
    assert "36 train / 12 validation samples, 16 features, 4 classes" in description


def test_module_command_and_backend(default_run, tmp_path):
    """``python -m keras_lookahead compare --backend B`` in a new process, started with no
    KERAS_BACKEND: it must train on B (it restarts itself with KERAS_BACKEND set)."""
    if default_run.family != "keras3":
        pytest.skip("--backend picks a Keras 3 backend (this stack: {})".format(
            default_run.label))
    env = dict(os.environ)
    env.pop("KERAS_BACKEND", None)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(compare.__file__))] + sys.path)
    done = subprocess.run(
        [sys.executable, "-m", "keras_lookahead", "compare", "--backend", default_run.backend,
         "--data", _blobs(str(tmp_path / "blobs.npz")), "--epochs", "1", "--seeds", "1",
         "--optimizers", "lookahead-adam", "--no-plot", "--out", str(tmp_path / "out")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    output = done.stdout.decode()
    assert done.returncode == 0, output[-3000:]
    assert "({})".format(default_run.backend) in output and "[1/1] lookahead-adam" in output
