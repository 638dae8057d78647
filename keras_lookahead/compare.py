"""``lookahead-keras compare``: bare optimizers against Lookahead on a real data set.

Trains the same small classifier (an MLP on the flattened input) once per optimizer and seed,
from the same initial weights and batch order for every optimizer of a seed, and reports the
mean and spread over seeds of the final validation accuracy and loss and of the seconds per
epoch; writes the learning curves (PNG, shaded over seeds) and every epoch's numbers (CSV,
JSON). The data: scikit-learn's bundled digits by default (nothing is downloaded), MNIST-1D
(``--data mnist1d``: Greydanus & Kobak, ICML 2024, generated on the spot by the ``mnist1d``
package, its own 4000 / 1000 train / test split) or any ``.npz`` holding ``x`` (samples first,
numbers, standardized per feature on the training split) and labels ``y`` (integers, strings, a
column of either, or one-hot rows). Bad arguments and bad or degenerate data (a missing file, one
class, a class of one sample, NaN or inf) stop it at once with a one-line error and exit code 2.

    lookahead-keras compare                       # digits, the default optimizers, 3 seeds
    python -m keras_lookahead compare --backend torch --optimizers sgd,lookahead-sgd
    lookahead-keras compare --data mine.npz --epochs 30 --seeds 5 --out results/
    lookahead-keras compare --data mnist1d --model gru --optimizers adam,lookahead-adam

The model (``--model``): ``mlp``, the default, dense layers of ``--hidden`` widths; or one of
MNIST-1D's reference models, as in the paper's PyTorch code (notebooks/models.py), with
PyTorch's default initialization: ``logistic`` (one linear layer), ``resmlp`` (two hidden layers
of 100, the second added to the first), ``cnn`` (three strided Conv1D of 25 channels, kernels
5, 3, 3, then a linear layer on the flattened output) and ``gru`` (a bidirectional GRU of 6 units
per direction, a linear layer on all its outputs). ``--data mnist1d`` changes the defaults to
the paper's training setup (``DATA_DEFAULTS``): Adam lr 1e-2, batch 100, 150 epochs (6000
steps), batches in a fixed order, the CNN.

Optimizers are named ``<base>`` or ``<variant>-<base>``: base ``sgd`` (momentum 0.9) or
``adam``; variant ``lookahead`` (``Lookahead(k, alpha)``), ``nested``
(``NestedLookahead(k, alpha, s, h)``), ``pullback`` (``Lookahead(..., pullback="pullback")``)
or ``reset`` (``pullback="reset"``). Lookahead variants are validated on their slow weights
(``ValidateOnSlowWeights``; ``--eval-weights fast`` for the fast ones), which is what the
paper evaluates.
"""
import argparse
import csv
import json
import os
import sys
import time

import numpy as np

PROG = "lookahead-keras compare"
BASES = ("sgd", "adam")
VARIANTS = ("lookahead", "nested", "pullback", "reset")
DEFAULT_OPTIMIZERS = "sgd,lookahead-sgd,nested-sgd,pullback-sgd,adam,lookahead-adam"
COLUMNS = ("optimizer", "seed", "epoch", "loss", "accuracy", "val_loss", "val_accuracy",
           "seconds")
MODELS = ("mlp", "logistic", "resmlp", "cnn", "gru")
#: the data sets that are not a file, and the defaults each brings (the reference code's setup:
#: MNIST-1D's notebooks/train.py, get_model_args() with total_steps = 6000 as its benchmark ran)
DATA_DEFAULTS = {
    "mnist1d": {"epochs": 150, "batch_size": 100, "adam_lr": 1e-2, "model": "cnn",
                "batch_order": "fixed"},
}
MNIST1D = "mnist1d==0.0.2.post1"


def _optimizer_names(text):
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        variant, _, base = name.rpartition("-")
        if base not in BASES or (variant and variant not in VARIANTS):
            bases, variants = ", ".join(BASES), ", ".join(VARIANTS)
            raise argparse.ArgumentTypeError(
                "`--optimizers` takes a comma-separated list of <base> or <variant>-<base>, "
                f"base one of {bases}, variant one of {variants}. Received: {name!r}")
    if not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"`--optimizers` must name at least one optimizer, each once. Received: {text!r}")
    return names


def _number(kind, text):
    try:
        return kind(text)
    except ValueError:
        rule = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {rule}. Received: {text!r}")


def _checked(kind, rule, ok):
    """An argparse type: ``text`` as ``kind``, refused unless ``ok(value)`` ("must be {rule}")."""
    def parse(text):
        value = _number(kind, text)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {rule}. Received: {text}")
        return value
    return parse


def _positive(kind):
    return _checked(kind, "> 0", lambda v: v > 0)


_fraction = _checked(float, "in (0, 1)", lambda v: 0.0 < v < 1.0)
_unit = _checked(float, "in [0, 1]", lambda v: 0.0 <= v <= 1.0)
_momentum = _checked(float, "in [0, 1)", lambda v: 0.0 <= v < 1.0)


def _widths(text):
    parts = [p.strip() for p in str(text).split(",")]
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(
            f"must be comma-separated integers > 0 (e.g. 64 or 128,64). Received: {text!r}")
    return [int(p) for p in parts]


class _Parser(argparse.ArgumentParser):
    """Errors as one line (``<prog>: error: ...``), exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _fail(message):
    """Refuse bad data: one line on stderr, exit code 2 (like a bad argument)."""
    sys.stderr.write(f"{PROG}: error: {message}\n")
    raise SystemExit(2)


def add_arguments(parser):
    data = parser.add_argument_group("data and model")
    data.add_argument("--data", metavar="PATH.npz|mnist1d",
                      help="an .npz with arrays x (samples first) and y (labels: integers, "
                           "strings, or one-hot rows), or mnist1d (MNIST-1D, generated by the "
                           "mnist1d package; validated on its test split; changes the defaults "
                           "to the paper's setup); default: scikit-learn's bundled digits")
    data.add_argument("--val-fraction", type=_fraction, default=0.3,
                      help="held out for validation, stratified; mnist1d has its own split")
    data.add_argument("--model", choices=MODELS, default="mlp",
                      help="mlp: dense layers of --hidden widths; the others: MNIST-1D's "
                           "reference models (logistic, resmlp, cnn, gru)")
    data.add_argument("--hidden", type=_widths, default="64",
                      help="hidden layer widths of mlp, comma-separated")
    train = parser.add_argument_group("training")
    train.add_argument("--optimizers", type=_optimizer_names,
                       default=DEFAULT_OPTIMIZERS,
                       help="comma-separated <base> or <variant>-<base>")
    train.add_argument("--epochs", type=_positive(int), default=20, help="epochs per run")
    train.add_argument("--seeds", type=_positive(int), default=3,
                       help="runs per optimizer, each from its own initial weights")
    train.add_argument("--batch-size", type=_positive(int), default=32, help="batch size")
    train.add_argument("--batch-order", choices=("shuffled", "fixed"), default="shuffled",
                       help="shuffled every epoch (by the seed), or the data's own order every "
                            "epoch (as MNIST-1D's reference code)")
    train.add_argument("--sgd-lr", type=_positive(float), default=0.1,
                       help="learning rate of sgd")
    train.add_argument("--sgd-momentum", type=_momentum, default=0.9, help="momentum of sgd")
    train.add_argument("--adam-lr", type=_positive(float), default=3e-3,
                       help="learning rate of adam")
    train.add_argument("--k", type=_positive(int), default=5, help="Lookahead's k")
    train.add_argument("--alpha", type=_unit, default=0.5, help="Lookahead's alpha")
    train.add_argument("--s", type=_positive(int), default=3, help="NestedLookahead's s")
    train.add_argument("--h", type=_unit, default=0.5, help="NestedLookahead's h")
    train.add_argument("--eval-weights", choices=("slow", "fast"), default="slow",
                       help="validate Lookahead variants on their slow or fast weights")
    run = parser.add_argument_group("run")
    run.add_argument("--backend", choices=("jax", "tensorflow", "torch"),
                     help="the Keras 3 backend (sets KERAS_BACKEND; unset: as set, or "
                          "Keras' own default)")
    run.add_argument("--out", default="lookahead-compare", metavar="DIR",
                     help="where curves.png, runs.csv and summary.json go")
    run.add_argument("--no-plot", action="store_true", help="skip the PNG (no matplotlib)")
    run.add_argument("--quiet", action="store_true",
                     help="no progress lines (and no progress bar on a terminal)")


def load_data(path, val_fraction):
    """``(x_train, y_train, x_val, y_val, description)``; the split is stratified and fixed
    (seed 0), so every optimizer and seed sees the same one."""
    if path == "mnist1d":
        return load_mnist1d()
    if path is None:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise SystemExit("The default data set is scikit-learn's digits: pip install "
                             "scikit-learn, or pass --data PATH.npz")
        digits = load_digits()
        x, y, name = digits.data, digits.target, "scikit-learn digits (8x8 images)"
    else:
        if not os.path.isfile(path):
            _fail(f"`--data` {path} is not a file")
        try:
            with np.load(path, allow_pickle=False) as archive:
                files = list(archive.files)
                if "x" not in files or "y" not in files:
                    _fail(f"`--data` must be an .npz with arrays x and y. Received: {path} with "
                          f"arrays {files}")
                x, y, name = archive["x"], archive["y"], os.path.basename(path)
        except (OSError, ValueError, AttributeError) as error:
            _fail(f"`--data` {path} is not a readable .npz ({error})")
    try:
        x = np.asarray(x, "float32").reshape(len(x), -1)
    except (TypeError, ValueError):
        _fail(f"`x` must hold numbers. Received: dtype {np.asarray(x).dtype}")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        _fail(f"`x` holds {bad} NaN or infinite values: clean or impute them first")
    y, classes = _labels(np.asarray(y), len(x))
    counts = np.bincount(y)
    if len(classes) < 2:
        only = classes[0] if len(classes) else None
        _fail(f"`y` must hold at least two classes. Received: one class, {only!r}")
    if counts.min() < 2:
        rare, count = classes[int(counts.argmin())], int(counts.min())
        _fail("every class needs at least two samples (one to train, one to validate). "
              f"Received: class {rare!r} with {count}")
    rng = np.random.RandomState(0)
    val = np.zeros(len(y), bool)
    for label in np.unique(y):
        where = rng.permutation(np.flatnonzero(y == label))
        take = min(max(int(round(val_fraction * len(where))), 1), len(where) - 1)
        val[where[:take]] = True
    # standardized per feature on the training split (constant features left at 0)
    mean = x[~val].mean(axis=0)
    std = x[~val].std(axis=0)
    x = (x - mean) / np.where(std > 0, std, 1.0)
    n_train, n_val = int((~val).sum()), int(val.sum())
    description = (f"{name}: {n_train} train / {n_val} validation samples, {x.shape[1]} "
                   f"features, {len(classes)} classes")
    return x[~val], y[~val], x[val], y[val], description


def load_mnist1d():
    """MNIST-1D as the paper made it: ``make_dataset(get_dataset_args())`` (seed 42; nothing is
    downloaded), its own split (4000 train, 1000 test) and scale (the whole set centred to mean
    0 and std 1 by the package); ``(x_train, y_train, x_test, y_test, description)``."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        _fail(f"`--data mnist1d` needs the mnist1d package: pip install {MNIST1D} (or "
              "lookahead-keras[mnist1d])")
    try:
        from importlib import metadata
        version = metadata.version("mnist1d")
    except ImportError:  # Python 3.7: no importlib.metadata
        version = "(version unknown)"
    data = make_dataset(get_dataset_args())
    x, y, x_test, y_test = (np.asarray(data[key], "float32" if key.startswith("x") else "int32")
                            for key in ("x", "y", "x_test", "y_test"))
    description = f"MNIST-1D (mnist1d {version}, generated): {len(x)} train / " \
                  f"{len(x_test)} test samples, {x.shape[1]} features, " \
                  f"{len(np.unique(y))} classes (validation = its test split)"
    return x, y, x_test, y_test, description


def _torch_init(keras, fan_in):
    """The initializers of PyTorch's nn.Linear / nn.Conv1d for a layer of ``fan_in`` inputs
    per output: weights and bias uniform in +-1/sqrt(fan_in)."""
    bound = float(fan_in) ** -0.5
    return {"kernel_initializer": keras.initializers.VarianceScaling(1.0 / 3, "fan_in",
                                                                     "uniform"),
            "bias_initializer": keras.initializers.RandomUniform(-bound, bound)}


def _torch_dense(keras, units, fan_in, **kwargs):
    """A Dense layer initialized as PyTorch's nn.Linear."""
    return keras.layers.Dense(units, **_torch_init(keras, fan_in), **kwargs)


def build_model(keras, name, features, classes, hidden=(64,)):
    """The classifier ``--model`` names, with a softmax output; MNIST-1D's reference models
    (notebooks/models.py of the paper's code) with PyTorch's default initialization."""
    layers = keras.layers
    if name == "mlp":
        return keras.models.Sequential(
            [layers.Input((features,))] + [layers.Dense(int(w), activation="relu")
                                           for w in hidden] +
            [layers.Dense(classes, activation="softmax")])
    inputs = layers.Input((features,))
    if name == "logistic":
        return keras.Model(inputs, _torch_dense(keras, classes, features,
                                                activation="softmax")(inputs))
    if name == "resmlp":  # MLPBase: h = relu(W1 x); h = h + relu(W2 h); W3 h
        h = _torch_dense(keras, 100, features, activation="relu")(inputs)
        h = layers.Add()([h, _torch_dense(keras, 100, 100, activation="relu")(h)])
        return keras.Model(inputs, _torch_dense(keras, classes, 100, activation="softmax")(h))
    h = layers.Reshape((features, 1))(inputs)
    if name == "cnn":  # ConvBase: Conv1d(1, 25, 5, stride 2, padding 1), then two of kernel 3
        channels, length = 1, features
        for kernel in (5, 3, 3):
            h = layers.ZeroPadding1D(1)(h)
            h = layers.Conv1D(25, kernel, strides=2, activation="relu",
                              **_torch_init(keras, channels * kernel))(h)
            channels, length = 25, (length + 2 - kernel) // 2 + 1
        fan_in = channels * length  # 125 on MNIST-1D's 40 features
    else:  # GRUBase: bidirectional GRU(6) over the 40 steps, its outputs flattened
        bound = 6 ** -0.5
        uniform = keras.initializers.RandomUniform(-bound, bound)
        # reset_after: the reset gate applied after the recurrent product, as PyTorch's GRU (and
        # Keras 2+'s default; tf.keras 1.x's is False)
        h = layers.Bidirectional(layers.GRU(6, return_sequences=True, reset_after=True,
                                            kernel_initializer=uniform,
                                            recurrent_initializer=uniform,
                                            bias_initializer=uniform))(h)
        fan_in = 2 * 6 * features
    h = layers.Flatten()(h)
    return keras.Model(inputs, _torch_dense(keras, classes, fan_in, activation="softmax")(h))


def _labels(y, n):
    """``(integer labels 0..C-1, the C class names)`` from ``y``: integers (or whole-number
    floats), strings, a column of either (shape (N, 1)), or one-hot rows."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2 and y.shape[1] > 1 and len(y) == n:
        rows = np.asarray(y, "float64") if y.dtype.kind in "biuf" else None
        if rows is None or not (np.isin(rows, (0, 1)).all() and (rows.sum(axis=1) == 1).all()):
            _fail(f"`y` of shape {y.shape} must be one-hot rows (one 1 per row). Received: other "
                  "values")
        y = rows.argmax(axis=1)
    if y.ndim != 1 or len(y) != n:
        _fail(f"`y` must hold one label per sample of `x`. Received: y of shape {y.shape} for {n} "
              "samples")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or not np.all(np.mod(y, 1) == 0):
            example = float(y[np.flatnonzero(~np.isfinite(y) | (np.mod(
                np.nan_to_num(y), 1) != 0))[0]])
            _fail("`y` must hold integer labels (or strings). Received: float values such "
                  f"as {example!r}")
    elif y.dtype.kind not in "biuUSO":
        _fail(f"`y` must hold integer labels or strings. Received: dtype {y.dtype}")
    classes, index = np.unique(y.astype(str) if y.dtype.kind == "O" else y, return_inverse=True)
    return index.astype("int32"), [c.item() if hasattr(c, "item") else c for c in classes]


class _EpochLog:
    """Training seconds of each epoch, from its start to the end of its last batch: validation
    (which for Lookahead variants includes swapping the slow weights in on the host) is not
    a cost of the optimizer, so it is left out."""

    def __init__(self, keras, on_epoch=None):
        log = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                log.start = log.end = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                log.end = time.perf_counter()  # after the step: logs are numbers by now

            def on_epoch_end(self, epoch, logs=None):
                log.seconds.append(log.end - log.start)
                if on_epoch is not None:
                    on_epoch(epoch)

        self.seconds = []
        self.callback = Callback()


class Progress:
    """A bar over every epoch of every run, on one terminal line rewritten after each epoch
    (nothing when ``stream`` is not a terminal: a log gets the per-run lines only)."""

    WIDTH = 24

    def __init__(self, runs, epochs, stream=None, enabled=True):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self.total, self.done, self.start = runs * epochs, 0, time.time()

    def epoch(self, label):
        self.done += 1
        if not self.enabled:
            return
        filled = self.WIDTH * self.done // self.total
        bar, rest = "#" * filled, "." * (self.WIDTH - filled)
        elapsed = time.time() - self.start
        self.stream.write(
            f"\r[{bar}{rest}] {self.done}/{self.total} epochs, {elapsed:.0f} s: {label}\x1b[K")
        self.stream.flush()

    def clear(self):
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _set_seed(keras, seed):
    set_random_seed = getattr(keras.utils, "set_random_seed", None)
    if set_random_seed is not None:
        set_random_seed(seed)
        return
    import random
    import tensorflow as tf
    random.seed(seed)
    np.random.seed(seed)
    tf.compat.v1.set_random_seed(seed)


def _make_optimizer(keras, base, args):
    if base == "adam":
        return keras.optimizers.Adam(learning_rate=args.adam_lr)
    return keras.optimizers.SGD(learning_rate=args.sgd_lr, momentum=args.sgd_momentum)


def _lookahead(name, args):
    import keras_lookahead
    variant = name.rpartition("-")[0]
    if variant == "nested":
        return keras_lookahead.NestedLookahead(k=args.k, alpha=args.alpha, s=args.s, h=args.h)
    if variant in ("pullback", "reset"):
        return keras_lookahead.Lookahead(k=args.k, alpha=args.alpha, pullback=variant)
    if variant == "lookahead":
        return keras_lookahead.Lookahead(k=args.k, alpha=args.alpha)
    return None


def train_one(keras, name, seed, data, args, on_epoch=None):
    """One optimizer, one seed: the per-epoch history; ``on_epoch(epoch)`` after each epoch."""
    import keras_lookahead
    x_train, y_train, x_val, y_val = data
    keras.backend.clear_session()
    _set_seed(keras, seed)  # the same initial weights and batch order for every optimizer
    model = build_model(keras, args.model, x_train.shape[1], int(y_train.max()) + 1,
                        args.hidden)
    model.compile(optimizer=_make_optimizer(keras, name.rpartition("-")[2], args),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    lookahead = _lookahead(name, args)
    epoch_log = _EpochLog(keras, on_epoch)
    callbacks = [epoch_log.callback]
    if lookahead is not None:
        lookahead.inject(model)
        if args.eval_weights == "slow":
            callbacks.insert(0, keras_lookahead.ValidateOnSlowWeights())
    history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                        validation_data=(x_val, y_val),
                        shuffle=args.batch_order == "shuffled", verbose=0,
                        callbacks=callbacks).history
    acc = "accuracy" if "accuracy" in history else "acc"  # Keras before 2.3 says acc
    numbers = {"loss": history["loss"], "accuracy": history[acc],
               "val_loss": history["val_loss"], "val_accuracy": history["val_" + acc],
               "seconds": epoch_log.seconds}
    return {key: [float(v) for v in values] for key, values in numbers.items()}


def summarize(runs, names):
    """Per optimizer: mean and std over seeds of the final val accuracy and loss, and of the
    median training seconds per epoch after the first (which includes tracing and
    compiling)."""
    rows = []
    for name in names:
        mine = [r for r in runs if r["optimizer"] == name]
        finals = {key: np.array([r["history"][key][-1] for r in mine])
                  for key in ("val_accuracy", "val_loss", "loss")}
        per_epoch = np.array([np.median(r["history"]["seconds"][1:] or
                                        r["history"]["seconds"]) for r in mine])
        row = {"optimizer": name, "seeds": len(mine)}
        for key, values in list(finals.items()) + [("seconds_per_epoch", per_epoch)]:
            row[key + "_mean"] = float(values.mean())
            row[key + "_std"] = float(values.std())
        rows.append(row)
    return rows


def format_table(rows):
    header = ("optimizer", "val accuracy", "val loss", "train loss", "train s/epoch")
    lines = [header]
    for r in rows:
        mean, std = r["seconds_per_epoch_mean"], r["seconds_per_epoch_std"]
        lines.append((r["optimizer"],) + tuple(
            "{:.4f} ± {:.4f}".format(r[key + "_mean"], r[key + "_std"])
            for key in ("val_accuracy", "val_loss", "loss")) +
            (f"{mean:.3f} ± {std:.3f}",))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(line, widths)))
                     for line in lines)


def plot(runs, names, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = (("loss", "training loss"), ("val_loss", "validation loss"),
              ("val_accuracy", "validation accuracy"))
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4.4))
    colors = plt.get_cmap("tab10").colors
    for i, name in enumerate(names):
        mine = [r["history"] for r in runs if r["optimizer"] == name]
        for ax, (key, label) in zip(axes, panels):
            values = np.array([h[key] for h in mine])
            epochs = np.arange(1, values.shape[1] + 1)
            style = "-" if "-" in name else "--"
            ax.plot(epochs, values.mean(axis=0), style, color=colors[i % 10], label=name)
            ax.fill_between(epochs, values.min(axis=0), values.max(axis=0),
                            color=colors[i % 10], alpha=0.18, linewidth=0)
            ax.set_title(label)
            ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
    for ax, (key, _) in zip(axes, panels):
        if key.endswith("loss"):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[-1].legend(loc="lower right", fontsize="small")
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_csv(runs, path):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for r in runs:
            h = r["history"]
            for epoch in range(len(h["loss"])):
                writer.writerow([r["optimizer"], r["seed"], epoch + 1] +
                                [f"{h[key][epoch]:.6g}" for key in COLUMNS[3:]])


def describe_model(args):
    if args.model == "mlp":
        hidden = ",".join(map(str, args.hidden))
        return f"mlp, hidden {hidden}"
    return args.model


def keras_stack(args):
    """``(keras, "Keras <version> (<backend>)")``, or a clear exit when Keras cannot import or
    ``--backend`` cannot be honoured."""
    from keras_lookahead import compat
    try:
        keras = compat.keras_module()
    except ImportError as err:
        raise SystemExit(f"Keras could not be imported: {err}. Keras 3 imports the backend that "
                         "KERAS_BACKEND names (TensorFlow if it is unset): name an installed "
                         "one with --backend jax, tensorflow or torch.")
    backend = keras.backend.backend() if hasattr(keras.backend, "backend") else "tensorflow"
    # tf.keras 2.13+ is an API module without __version__; its package (keras) has one
    version = getattr(keras, "__version__", None) or getattr(
        sys.modules.get(keras.__name__.split(".")[0]), "__version__", "(version unknown)")
    if args.backend is not None and backend != args.backend:
        raise SystemExit(f"`--backend {args.backend}` needs Keras 3; this Keras "
                         f"({keras.__name__} {version}) runs on {backend} only.")
    return keras, f"Keras {version} ({backend})"


def train_all(keras, data, args, jobs, width=16):
    """Every job once per seed (``args.seeds``), seed by seed, with the progress bar and a line
    per run (the label padded to ``width``). ``jobs``: ``[(label, optimizer name, the arguments
    train_one reads)]``. Returns ``(runs, seconds)``: per run ``{"optimizer": label, "seed",
    "history"}``, in order."""
    runs, total, start = [], len(jobs) * args.seeds, time.time()
    progress = Progress(total, args.epochs, enabled=not args.quiet)
    for seed in range(args.seeds):
        for label, name, job_args in jobs:
            text = f"{label} seed {seed}, epoch "
            history = train_one(keras, name, seed, data, job_args,
                                on_epoch=lambda epoch, text=text: progress.epoch(
                                    f"{text}{epoch + 1}/{args.epochs}"))
            runs.append({"optimizer": label, "seed": seed, "history": history})
            progress.clear()
            if not args.quiet:
                accuracy, loss = history["val_accuracy"][-1], history["val_loss"][-1]
                seconds, so_far, w = sum(history["seconds"]), time.time() - start, len(str(total))
                print(f"[{len(runs):>{w}}/{total}] {label:<{width}} seed {seed}: val accuracy "
                      f"{accuracy:.4f}, val loss {loss:.4f}, {seconds:.1f} s  "
                      f"({so_far:.0f} s so far)", flush=True)
    return runs, time.time() - start


def run(args):
    """Everything but the argument parsing; returns the summary (also written as JSON)."""
    keras, stack = keras_stack(args)
    x_train, y_train, x_val, y_val, description = load_data(args.data, args.val_fraction)
    config = f"{describe_model(args)}, {args.epochs} epochs, batch {args.batch_size} " \
             f"({args.batch_order}), {args.seeds} seeds, k={args.k}, alpha={args.alpha}, " \
             f"s={args.s}, h={args.h}, Lookahead validated on {args.eval_weights} weights"
    print(f"{stack} | {description}\n{config}", flush=True)
    os.makedirs(args.out, exist_ok=True)
    data = (x_train, y_train, x_val, y_val)
    runs, _ = train_all(keras, data, args, [(name, name, args) for name in args.optimizers])
    rows = summarize(runs, args.optimizers)
    print(f"\nfinal epoch, mean ± std over {args.seeds} seeds:\n{format_table(rows)}")
    summary = {"stack": stack, "data": description, "config": vars(args), "table": rows,
               "runs": runs}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    write_csv(runs, os.path.join(args.out, "runs.csv"))
    written = ["runs.csv", "summary.json"]
    if not args.no_plot:
        try:
            plot(runs, args.optimizers, os.path.join(args.out, "curves.png"),
                 f"{stack} | {description}\n{config}")
            written.insert(0, "curves.png")
        except ImportError:
            print("matplotlib is not installed: no curves.png (pip install matplotlib, or "
                  "--no-plot to silence this)")
    files = ", ".join(written)
    print(f"wrote {files} in {os.path.abspath(args.out)}")
    return summary


def parse_args(parser, argv):
    """``argv`` parsed with the defaults of the data set that its ``--data`` names
    (``DATA_DEFAULTS``: ``--data mnist1d --help`` shows them); an option given wins."""
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--data")
    parser.set_defaults(**DATA_DEFAULTS.get(peek.parse_known_args(argv)[0].data, {}))
    return parser.parse_args(argv)


def new_parser(prog, doc):
    from keras_lookahead import __version__
    parser = _Parser(prog=prog, description=doc.split("\n\n")[0],
                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--version", action="version",
                        version=f"lookahead-keras {__version__}")
    return parser


def restart_with_backend(args, command, argv):
    if args.backend is not None and os.environ.get("KERAS_BACKEND") != args.backend:
        # Keras 3 reads KERAS_BACKEND once, when it is first imported (importing
        # keras_lookahead may have done so already): start again with it set.
        os.environ["KERAS_BACKEND"] = args.backend
        os.execv(sys.executable, [sys.executable, "-m", "keras_lookahead", command] + argv)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = new_parser(PROG, __doc__)
    add_arguments(parser)
    args = parse_args(parser, argv)
    restart_with_backend(args, "compare", argv)
    return run(args)
