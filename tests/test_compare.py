"""``lookahead-keras compare`` (keras_lookahead/compare.py): the README's main job.

It must compare fairly (every optimizer of a seed starts from the same weights and sees the
same batches: Lookahead with alpha = 1 and NestedLookahead with h = 1 then train exactly as the
bare optimizer), actually use Lookahead (alpha = 0.5 differs), and write what it says it
writes. It trains with the Keras ``compat.keras_module()`` picks (Keras 3, tf_keras, tf.keras),
so it runs once per env (marker ``once``): in the env's first variant, and not again in another
TensorFlow execution mode.
"""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_lookahead import compare, sensitivity

pytestmark = pytest.mark.once


@pytest.fixture
def default_run(stack, request):
    if stack.family == "standalone":
        pytest.skip("compare trains with tf.keras or Keras 3, never standalone Keras "
                    "(this stack: {})".format(stack.label))
    if request.config.getoption("--tf-mode") != "default":
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
    (["--epochs", "two"], "must be an integer. Received: 'two'"),
    (["--val-fraction", "1.5"], "must be in (0, 1). Received: 1.5"),
    (["--hidden", "abc"], "must be comma-separated integers > 0 (e.g. 64 or 128,64). "
                          "Received: 'abc'"),
    (["--hidden", "0"], "Received: '0'"),
    (["--k", "0"], "argument --k: must be > 0. Received: 0"),
    (["--s", "-1"], "argument --s: must be > 0. Received: -1"),
    (["--alpha", "1.5"], "argument --alpha: must be in [0, 1]. Received: 1.5"),
    (["--h", "x"], "argument --h: must be a number. Received: 'x'"),
    (["--sgd-momentum", "1"], "must be in [0, 1). Received: 1"),
    (["--model", "vgg"], "argument --model: invalid choice: 'vgg'"),
    (["--batch-order", "random"], "argument --batch-order: invalid choice: 'random'"),
])
def test_bad_arguments(argv, message, capsys):
    """Checked when parsed, before any data is read or any training: one line, exit code 2."""
    _assert_refused(lambda: compare.main(argv), message, capsys)


def _assert_refused(call, message, capsys, prog=compare.PROG):
    """``call()`` exits with code 2 and one line on stderr, ``<prog>: error: ...message...``."""
    with pytest.raises(SystemExit) as exit_:
        call()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1 and err.startswith(prog + ": error: "), err


def test_version_and_help(capsys):
    import keras_lookahead
    with pytest.raises(SystemExit) as exit_:
        compare.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == "lookahead-keras " + keras_lookahead.__version__
    with pytest.raises(SystemExit):
        compare.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for option, default in (("--k", "5"), ("--hidden", "64"), ("--val-fraction", "0.3"),
                            ("--optimizers", compare.DEFAULT_OPTIMIZERS)):
        section = help_text[help_text.rindex(option + " "):]
        section = section[:section.index(")") + 1]
        assert section.count("default") == 1 and default in section.replace(" ", ""), section


def _refused(tmp_path, capsys, message, **arrays):
    path = str(tmp_path / "data.npz")
    np.savez(path, **arrays)
    _assert_refused(lambda: compare.load_data(path, 0.3), message, capsys)


def test_bad_data_is_refused(tmp_path, capsys):
    """Each a one-line error, exit code 2, before any training."""
    rng = np.random.RandomState(0)
    x = rng.rand(12, 3)
    with pytest.raises(SystemExit) as exit_:
        compare.load_data(str(tmp_path / "missing.npz"), 0.3)
    assert exit_.value.code == 2 and "is not a file" in capsys.readouterr().err
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(SystemExit):
        compare.load_data(str(tmp_path / "text.npz"), 0.3)
    assert "is not a readable .npz" in capsys.readouterr().err
    _refused(tmp_path, capsys, "must be an .npz with arrays x and y. Received: ",
             x=x, labels=np.zeros(12))
    _refused(tmp_path, capsys, "must hold integer labels (or strings). Received: float values "
                               "such as 0.5", x=x, y=np.array([0.5] + [1.0] * 11))
    _refused(tmp_path, capsys, "at least two classes. Received: one class, 3",
             x=x, y=np.full(12, 3))
    _refused(tmp_path, capsys, "at least two samples (one to train, one to validate). "
                               "Received: class 1 with 1", x=x, y=np.array([0] * 11 + [1]))
    _refused(tmp_path, capsys, "at least two classes", x=x[:1], y=np.array([0]))
    bad = x.copy()
    bad[3, 1] = np.nan
    bad[4, 0] = np.inf
    _refused(tmp_path, capsys, "`x` holds 2 NaN or infinite values",
             x=bad, y=np.arange(12) % 2)
    _refused(tmp_path, capsys, "must hold one label per sample of `x`. Received: y of shape "
                               "(11,) for 12 samples", x=x, y=np.arange(11) % 2)
    _refused(tmp_path, capsys, "must be one-hot rows", x=x, y=rng.rand(12, 3))


def test_labels_of_every_form(tmp_path):
    """Integer labels as a column (N, 1) are labels, not one-hot; strings map to integers in
    sorted order; one-hot rows become their index."""
    rng = np.random.RandomState(0)
    x = rng.rand(12, 3)
    for y, classes in ((np.arange(12).reshape(-1, 1) % 3, 3),
                       (np.array(["cat", "dog"] * 6), 2),
                       (np.array(["b", "a", "c"] * 4).reshape(-1, 1), 3),
                       (np.eye(4)[np.arange(12) % 4], 4)):
        path = str(tmp_path / "data.npz")
        np.savez(path, x=x, y=y)
        _, y_train, _, y_val, description = compare.load_data(path, 0.3)
        assert "{} classes".format(classes) in description
        assert sorted(set(y_train.tolist()) | set(y_val.tolist())) == list(range(classes))
        assert set(y_train.tolist()) == set(range(classes))  # every class trains


def test_split_is_stratified_and_standardized(tmp_path):
    """Images are flattened, features standardized on the training split, and each class gives
    the same share to validation."""
    path = str(tmp_path / "images.npz")
    rng = np.random.RandomState(0)
    x = rng.randint(0, 256, size=(48, 4, 4)).astype("float32")
    x[:, 0, 0] *= 100.0  # one feature on another scale: a global maximum would squash the rest
    np.savez(path, x=x, y=np.eye(4)[np.arange(48) % 4])
    x_train, y_train, x_val, y_val, description = compare.load_data(path, 0.25)
    assert x_train.shape == (36, 16) and x_val.shape == (12, 16)
    np.testing.assert_allclose(x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(x_train.std(axis=0), 1, atol=1e-4)
    assert np.bincount(y_val).tolist() == [3, 3, 3, 3]
    assert "36 train / 12 validation samples, 16 features, 4 classes" in description


def test_namesake_distribution_warns(tmp_path):
    """With the registry's keras-lookahead installed too, the import warns, naming both."""
    import keras_lookahead
    info = tmp_path / "keras_lookahead-0.9.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: keras-lookahead\n"
                                   "Version: 0.9.0\n")
    if sys.version_info < (3, 8):
        pytest.skip("importlib.metadata is Python 3.8+: the check is off on 3.7")
    with pytest.warns(UserWarning, match=r"lookahead-keras \(this library\) and "
                                         r"keras-lookahead 0\.9\.0"):
        keras_lookahead._check_namesake([str(tmp_path)])
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keras_lookahead._check_namesake([str(tmp_path / "nothing")])


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


def test_progress_bar_on_a_terminal_only():
    """One line over every epoch of every run, rewritten in place on a terminal; nothing in a
    log (the per-run lines say it there)."""
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal, log = Terminal(), io.StringIO()
    for stream in (terminal, log):
        progress = compare.Progress(2, 3, stream=stream)
        for epoch in range(6):
            progress.epoch("adam seed 0, epoch {}/3".format(epoch % 3 + 1))
        progress.clear()
    lines = terminal.getvalue().split("\r")
    assert lines[1].startswith("[" + "#" * 4 + "." * 20 + "] 1/6 epochs, "), lines[1]
    assert "6/6 epochs" in lines[6] and lines[6].startswith("[" + "#" * compare.Progress.WIDTH)
    assert log.getvalue() == ""
    quiet = Terminal()
    compare.Progress(1, 1, stream=quiet, enabled=False).epoch("x")
    assert quiet.getvalue() == ""


# MNIST-1D, the reference models and the sensitivity command


def test_mnist1d_defaults_and_an_option_given_wins(capsys):
    """``--data mnist1d`` brings the reference setup (Adam 1e-2, batch 100, 6000 steps in a
    fixed order, the CNN), and shows it in --help; an option given on the command line wins."""
    parser = compare.new_parser(compare.PROG, compare.__doc__)
    compare.add_arguments(parser)
    args = compare.parse_args(parser, ["--data", "mnist1d", "--epochs", "3"])
    assert (args.epochs, args.batch_size, args.adam_lr, args.model, args.batch_order) == \
        (3, 100, 1e-2, "cnn", "fixed")
    parser = compare.new_parser(compare.PROG, compare.__doc__)
    compare.add_arguments(parser)
    args = compare.parse_args(parser, [])
    assert (args.epochs, args.batch_size, args.model, args.batch_order) == \
        (20, 32, "mlp", "shuffled")
    with pytest.raises(SystemExit):
        compare.main(["--data", "mnist1d", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--epochs EPOCHS epochs per run (default: 150)" in help_text


def test_mnist1d_missing_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)  # import fails as if not installed
    _assert_refused(lambda: compare.load_data("mnist1d", 0.3), "pip install mnist1d==0.0.2.post1",
                    capsys)


def test_mnist1d_loader():
    """The paper's data, made by its package: 4000 train / 1000 test, 40 features, 10 classes,
    the same every time (its seed 42)."""
    try:
        import mnist1d.data  # noqa: F401
    except ImportError:
        pytest.skip("mnist1d is not installed (pip install {}; tox.ini: py313-keras315-jax)"
                    .format(compare.MNIST1D))
    x, y, x_test, y_test, description = compare.load_data("mnist1d", 0.3)
    assert x.shape == (4000, 40) and x_test.shape == (1000, 40)
    assert y.shape == (4000,) and y_test.shape == (1000,)
    assert x.dtype == np.float32 and sorted(set(y.tolist())) == list(range(10))
    assert sorted(set(y_test.tolist())) == list(range(10))
    assert abs(float(np.concatenate([x, x_test]).std()) - 1) < 0.01  # the package's scaling
    assert "4000 train / 1000 test samples, 40 features, 10 classes" in description
    np.testing.assert_array_equal(compare.load_data("mnist1d", 0.3)[0], x)


def test_reference_models(default_run):
    """Each model builds with the reference code's parameter count (notebooks/models.py prints
    them: 410, 15210, 5210, 5134), has one output per class, and trains: two Adam steps change
    every weight of each. The models train side by side in one model (one trace, not five)."""
    from keras_lookahead import compat
    keras = compat.keras_module()
    rng = np.random.RandomState(0)
    x, y = rng.randn(20, 40).astype("float32"), np.arange(20) % 10
    counts = {"logistic": 410, "resmlp": 15210, "cnn": 5210, "gru": 5134, "mlp": 40 * 8 + 8 +
              8 * 10 + 10}
    models = [compare.build_model(keras, name, 40, 10, hidden=[8]) for name in compare.MODELS]
    for name, model in zip(compare.MODELS, models):
        assert model.count_params() == counts[name], name
        assert tuple(model.output_shape) == (None, 10), name
    inputs = keras.layers.Input((40,))
    together = keras.Model(inputs, [model(inputs) for model in models])
    together.compile(optimizer=keras.optimizers.Adam(1e-2),
                     loss=["sparse_categorical_crossentropy"] * len(models))
    before = [model.get_weights() for model in models]
    together.fit(x, [y] * len(models), batch_size=10, epochs=1, verbose=0)
    for name, model, weights in zip(compare.MODELS, models, before):
        for old, new in zip(weights, model.get_weights()):
            assert np.isfinite(new).all() and not np.array_equal(old, new), name


def test_sensitivity_tiny_grid(default_run, tmp_path, capsys):
    """Each learning rate bare and with Lookahead, the k x alpha grid at one rate: one row per
    configuration, a configuration both phases share trained once (its rows equal)."""
    from keras_lookahead.__main__ import main
    out = str(tmp_path / "out")
    plot = () if os.environ.get("KLA_PLOT") else ("--no-plot",)
    assert main(["sensitivity", "--data", _blobs(str(tmp_path / "blobs.npz")), "--model",
                 "mlp", "--hidden", "8", "--batch-size", "16", "--epochs", "1", "--seeds",
                 "1", "--inner", "sgd", "--sgd-lrs", "0.01,0.1", "--ks", "5,10", "--alphas",
                 "0.5", "--at-sgd-lr", "0.1", "--quiet", "--out", out] + list(plot)) == 0
    with open(os.path.join(out, "sensitivity.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [(r["phase"], r["inner"], r["variant"], float(r["lr"]), r["k"], r["alpha"])
            for r in rows] == [
        ("lr", "sgd", "bare", 0.01, "", ""), ("lr", "sgd", "lookahead", 0.01, "5", "0.5"),
        ("lr", "sgd", "bare", 0.1, "", ""), ("lr", "sgd", "lookahead", 0.1, "5", "0.5"),
        ("k-alpha", "sgd", "bare", 0.1, "", ""), ("k-alpha", "sgd", "lookahead", 0.1, "5", "0.5"),
        ("k-alpha", "sgd", "lookahead", 0.1, "10", "0.5")]
    assert all(r["seeds"] == "1" for r in rows)
    assert rows[3]["accuracy_mean"] == rows[5]["accuracy_mean"]  # one run, both phases
    assert rows[2]["loss_mean"] != rows[3]["loss_mean"]  # Lookahead changed the run
    with open(os.path.join(out, "runs.csv")) as f:
        assert len(list(csv.DictReader(f))) == 5  # 5 distinct configurations, 1 epoch, 1 seed
    with open(os.path.join(out, "sensitivity.json")) as f:
        written = json.load(f)
    assert [(s["inner"], s["variant"]) for s in written["spread"]] == [
        ("sgd", "bare"), ("sgd", "lookahead")]
    assert written["spread"][0]["best_minus_worst"] == pytest.approx(abs(
        float(rows[0]["accuracy_mean"]) - float(rows[2]["accuracy_mean"])), abs=1e-5)
    assert "wrote" in capsys.readouterr().out
    if os.environ.get("KLA_PLOT"):
        with open(os.path.join(out, "sensitivity.png"), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv,message", [
    (["--sgd-lrs", "0,0.1"], "`--sgd-lrs` must be a comma-separated list of distinct numbers "
                             "> 0. Received: '0,0.1'"),
    (["--adam-lrs", "1e-3,1e-3"], "`--adam-lrs` must be a comma-separated list of distinct "
                                  "numbers > 0. Received: '1e-3,1e-3'"),
    (["--ks", "5,x"], "Received: '5,x'"),
    (["--alphas", "0.5,1.5"], "`--alphas` must be a comma-separated list of distinct numbers in "
                              "[0, 1]. Received: '0.5,1.5'"),
    (["--inner", "sgd,rmsprop"], "`--inner` must name distinct inner optimizers among sgd, "
                                 "adam. Received: 'sgd,rmsprop'"),
    (["--at-sgd-lr", "-1"], "argument --at-sgd-lr: must be > 0. Received: -1"),
    (["--model", "vgg"], "argument --model: invalid choice: 'vgg'"),
])
def test_sensitivity_bad_arguments(argv, message, capsys):
    _assert_refused(lambda: sensitivity.main(argv), message, capsys, sensitivity.PROG)
