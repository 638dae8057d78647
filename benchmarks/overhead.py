"""Wall-time overhead of Lookahead on ``fit``, against the bare optimizer: ``inject``, the
``LookaheadCallback`` and the ``LookaheadOptimizer`` wrapper.

Model (--model): the wide 784-H-H-10 MLP (relu, softmax; H = --hidden, 1024 by default: 6
variables), a deep MLP of many small variables at a fixed parameter count ('deep:302': 302
variables, about 0.7M parameters) or a small ResNet-style conv net with BatchNormalization on
32x32x3 inputs ('conv'); see ``build_model``. Adam(1e-3), sparse categorical cross-entropy, on
random numpy data (nothing is downloaded). Every variant starts from
the same initial weights and sees the same batches.

Method, and why:

- Each variant has its own model, built, compiled (and injected) once and warmed up by one fit,
  so tracing and compilation are not timed. Lookahead's state carries over between fits, as it
  does in real use.
- A fit is timed by a callback, from ``on_train_begin`` to the last ``on_train_batch_end``
  (``time.perf_counter``), not around ``fit``: on TensorFlow the teardown of fit's tf.data
  iterator sometimes stalls for over a second, which has nothing to do with the optimizer. The
  callback overrides ``on_train_batch_end``, so Keras converts each step's logs to Python
  numbers before calling it: the last timestamp is taken after the last step really finished
  (JAX dispatches asynchronously).
- The CPU's speed drifts by tens of percent within seconds, and other processes come and go, so
  two long runs one after the other are not comparable. Instead the variants run interleaved over
  many short rounds (one epoch of --steps-per-round steps each), in an order that alternates per
  round (A B, B A, A B, ...), and each round gives one paired ratio variant_time / baseline_time.
  The report is the median of those ratios and their 25-75% range: 1.00 means no measurable
  overhead.

Stacks: Keras 3 on any backend (``KERAS_BACKEND=tensorflow|jax|torch``) and tf.keras 2.x (e.g.
TensorFlow 2.15, where ``import keras`` gives Keras 2.15), told apart by ``keras.__version__``.
On tf.keras 2.x, if ``tensorflow_addons`` is importable, TF Addons' ``Lookahead`` is timed too.
It accepts only legacy optimizers, so it is compared with bare *legacy* Adam, and so is inject
over the same legacy Adam, next to inject over the default (new) Adam vs bare new Adam.

    PYTHONPATH=. KERAS_BACKEND=jax python benchmarks/overhead.py --rounds 15 --steps-per-round 60
"""
import argparse
import gc
import json
import math
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import keras  # noqa: E402

from keras_lookahead import Lookahead, LookaheadCallback, LookaheadOptimizer  # noqa: E402

KERAS3 = int(keras.__version__.split(".")[0]) >= 3


def stack_name():
    if KERAS3:
        return "Keras {} ({} backend)".format(keras.__version__, keras.backend.backend())
    import tensorflow as tf
    return "tf.keras {} (TensorFlow {})".format(keras.__version__, tf.__version__)


def state_only_adam():
    """Adam(1e-3) holding one more copy of every trainable weight, which nothing reads or writes:
    no Lookahead, no anchor, no sync. What per-weight optimizer state costs by being there (Keras
    3's JAX trainer passes every optimizer variable into and out of its jitted step), so the
    floor of any Lookahead that keeps one slow variable per weight."""
    class StateOnlyAdam(keras.optimizers.Adam):
        def build(self, var_list):
            super().build(var_list)
            self._untouched = [self.add_variable_from_reference(v, "untouched")
                               for v in var_list]
    return StateOnlyAdam(1e-3)


def variants(args):
    """(name, optimizer label, optimizer factory, inject?, baseline name) for this stack."""
    adam = lambda: keras.optimizers.Adam(1e-3)  # noqa: E731
    label = "Adam" if KERAS3 else "Adam (keras.optimizers.Adam, new)"
    found = [("bare", label, adam, False, None),
             ("inject", label, adam, True, "bare"),
             ("callback", label, adam, "callback", "bare"),
             ("wrapper", "LookaheadOptimizer(Adam)",
              lambda: LookaheadOptimizer(adam(), k=args.k, alpha=args.alpha), False, "bare")]
    if KERAS3:
        return found + [("state-only", "Adam + one untouched copy per weight",
                         state_only_adam, False, "bare")]
    try:
        import tensorflow_addons as tfa
    except ImportError:
        print("tensorflow_addons is not importable: TF Addons' Lookahead is not timed.")
        return found
    legacy = lambda: keras.optimizers.legacy.Adam(1e-3)  # noqa: E731
    tfa_lookahead = lambda: tfa.optimizers.Lookahead(  # noqa: E731
        legacy(), sync_period=args.k, slow_step_size=args.alpha)
    return found + [
        ("bare-legacy", "legacy Adam", legacy, False, None),
        ("inject-legacy", "legacy Adam", legacy, True, "bare-legacy"),
        ("wrapper-legacy", "LookaheadOptimizer(legacy Adam)",
         lambda: LookaheadOptimizer(legacy(), k=args.k, alpha=args.alpha), False, "bare-legacy"),
        ("tfa", "tfa Lookahead(legacy Adam)", tfa_lookahead, False, "bare-legacy"),
    ]


def parse_shape(text):
    """A model shape from the command line: 'wide:H' (or just H), 'deep:V' or 'deep:V:P',
    'conv' or 'conv:W' (see :func:`build_model`)."""
    kind, _, rest = str(text).partition(":")
    if kind.isdigit():
        return int(kind)
    if kind not in ("wide", "deep", "conv"):
        raise SystemExit("unknown model shape {!r}: wide:H, deep:V[:P] or conv[:W]".format(text))
    return str(text)


def deep_widths(variables, params=700000):
    """Hidden widths of a 784-(W x L)-10 MLP with ``variables`` trainable variables (a kernel
    and a bias per layer: L = variables / 2 - 1 hidden layers) and about ``params``
    parameters: W solves 784 W + W + (L - 1)(W^2 + W) + 10 W + 10 = params."""
    layers = max(1, variables // 2 - 1)
    a, b = layers - 1, 784 + 1 + (layers - 1) + 10
    width = (params - 10) / b if a == 0 else (-b + math.sqrt(b * b + 4 * a * (params - 10))) / (2 * a)
    return [max(1, int(round(width)))] * layers


def input_shape(shape):
    return (32, 32, 3) if str(shape).startswith("conv") else (784,)


def build_model(shape):
    """The benchmark's model, by ``shape``:

    - an int H, or 'wide:H': the 784-H-H-10 MLP (6 variables);
    - 'deep:V[:P]': a 784-(W x L)-10 MLP with V trainable variables and about P parameters
      (700k by default), :func:`deep_widths`: the same work as a wide one spread over many
      small variables, as in real networks (ResNet-50 has 161 trainable variables);
    - 'conv[:W]': a small ResNet-style net on 32x32x3 inputs: a 3x3 conv, then three stages of
      one residual block each (two 3x3 convs with BatchNormalization, a strided 1x1 projection
      where the width changes), widths W, 2W, 4W (W = 16 by default), global average pooling
      and a softmax layer: 25 trainable variables (plus BatchNormalization's moving statistics,
      not trainable).
    """
    layers = keras.layers
    text = str(shape)
    kind, _, rest = text.partition(":")
    if kind.isdigit() or kind == "wide":
        widths = [int(rest or kind)] * 2
    elif kind == "deep":
        parts = rest.split(":")
        widths = deep_widths(int(parts[0]), int(float(parts[1])) if len(parts) > 1 else 700000)
    else:
        return _resnet(int(rest or 16))
    inputs = keras.Input((784,))
    h = inputs
    for width in widths:
        h = layers.Dense(width, activation="relu")(h)
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(h))


def _resnet(width):
    layers = keras.layers

    def conv_bn(h, filters, stride=1, relu=True):
        h = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(h)
        h = layers.BatchNormalization()(h)
        return layers.Activation("relu")(h) if relu else h

    inputs = keras.Input((32, 32, 3))
    h = conv_bn(inputs, width)
    for stage, filters in enumerate([width, 2 * width, 4 * width]):
        stride = 1 if stage == 0 else 2
        shortcut = h
        if stride != 1:
            shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(h)
        h = conv_bn(h, filters, stride)
        h = conv_bn(h, filters, relu=False)
        h = layers.Activation("relu")(layers.Add()([h, shortcut]))
    h = layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(h))


def shape_label(shape, model):
    """'wide MLP 784-1024-1024-10', 'deep MLP 784-(64 x 150)-10', 'ResNet-style conv net',
    with the trainable variables and parameters of ``model``."""
    text = str(shape)
    weights = model.trainable_weights
    params = sum(int(np.prod(w.shape)) for w in weights)
    if text.startswith("conv"):
        name = "ResNet-style conv net (32x32x3)"
    else:
        widths = [int(w.shape[-1]) for w in weights if len(w.shape) == 2][:-1]
        if len(set(widths)) == 1 and len(widths) > 2:
            name = "MLP 784-({} x {})-10".format(widths[0], len(widths))
        else:
            name = "MLP 784-{}-10".format("-".join(str(w) for w in widths))
    return "{}: {} variables, {:,} parameters".format(name, len(weights), params)


class FitTimer(keras.callbacks.Callback):
    """Seconds from ``on_train_begin`` to the last ``on_train_batch_end`` of one fit."""

    def on_train_begin(self, logs=None):
        self.steps = 0
        self.start = self.end = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        self.end = time.perf_counter()

    @property
    def seconds(self):
        return self.end - self.start


def prepare(shape, initial, make_optimizer, inject, k, alpha, x, y, fit_kwargs):
    """One variant's (model, FitTimer, callbacks): built from the ``initial`` weights, compiled
    with ``make_optimizer()``, then injected (``inject`` true), given a ``LookaheadCallback``
    (``inject == "callback"``) or left bare, and warmed up by one fit on ``x, y``."""
    model = build_model(shape)
    model.set_weights(initial)
    model.compile(optimizer=make_optimizer(), loss="sparse_categorical_crossentropy")
    timer = FitTimer()
    callbacks = [timer]
    if inject == "callback":
        callbacks.insert(0, LookaheadCallback(k=k, alpha=alpha))
    elif inject:
        Lookahead(k=k, alpha=alpha).inject(model)
    model.fit(x, y, callbacks=callbacks, **fit_kwargs)  # warm-up: trace / compile
    return model, timer, callbacks


def interleave(models, callbacks, timers, names, rounds, steps_per_round, x, y, fit_kwargs):
    """{name: [seconds per round]}: one fit per model per round, in the order ``names`` on even
    rounds and reversed on odd ones; each fit must run ``steps_per_round`` steps."""
    seconds = {name: [] for name in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            gc.collect()
            models[name].fit(x, y, callbacks=callbacks[name], **fit_kwargs)
            if timers[name].steps != steps_per_round:
                raise RuntimeError("{} ran {} steps, expected {}".format(
                    name, timers[name].steps, steps_per_round))
            seconds[name].append(timers[name].seconds)
    return seconds


def paired_ratios(seconds, baseline_seconds):
    """(per-round ratios, 25%, median, 75%) of ``seconds / baseline_seconds``, round by round."""
    ratios = np.array(seconds) / np.array(baseline_seconds)
    q25, median, q75 = np.percentile(ratios, [25, 50, 75])
    return ratios, q25, median, q75


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps-per-round", type=int, default=100)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=1024, help="H of the wide MLP")
    parser.add_argument("--model", type=parse_shape,
                        help="wide:H, deep:V[:P] (V variables, about P parameters) or conv[:W] "
                             "(default: wide:--hidden)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="write the raw numbers here")
    args = parser.parse_args()

    keras.utils.set_random_seed(args.seed)
    rng = np.random.RandomState(args.seed)
    n = args.steps_per_round * args.batch_size  # one epoch = one round, no partial batch
    shape = args.model or args.hidden
    x = rng.rand(n, *input_shape(shape)).astype("float32")
    y = rng.randint(0, 10, size=n).astype("int32")
    fit_kwargs = dict(batch_size=args.batch_size, epochs=1, shuffle=False, verbose=0)

    stack = stack_name()
    specs = variants(args)
    reference = build_model(shape)
    initial, model_label = reference.get_weights(), shape_label(shape, reference)
    del reference
    models, timers, callbacks = {}, {}, {}
    for name, _, make_optimizer, inject, _ in specs:
        models[name], timers[name], callbacks[name] = prepare(
            shape, initial, make_optimizer, inject, args.k, args.alpha, x, y, fit_kwargs)

    load_before = os.getloadavg()[0]
    print("{}: {}; {} rounds x {} steps, batch {}, k={}, alpha={}".format(
        stack, model_label, args.rounds, args.steps_per_round, args.batch_size, args.k, args.alpha))
    names = [spec[0] for spec in specs]
    seconds = interleave(models, callbacks, timers, names, args.rounds, args.steps_per_round,
                         x, y, fit_kwargs)

    load = (load_before, os.getloadavg()[0])
    rows, results = [], {}
    for name, label, _, _, baseline in specs:
        if baseline is None:
            continue
        ratios, q25, median, q75 = paired_ratios(seconds[name], seconds[baseline])
        per_step = float(np.median(seconds[baseline])) / args.steps_per_round
        results[name] = dict(baseline=baseline, optimizer=label, ratios=ratios.tolist(),
                             median=median, q25=q25, q75=q75, baseline_s_per_step=per_step)
        rows.append((name + " / " + baseline, label, "{:.3f}".format(median),
                     "{:.3f} - {:.3f}".format(q25, q75), "{:.2f} ms".format(1e3 * per_step)))

    header = ("variant / baseline", "optimizer", "median ratio", "IQR (25-75%)",
              "baseline per step")
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    print("\n{}, {}  (1-min load average {:.1f} before, {:.1f} after, {} CPUs)".format(
        stack, model_label, load[0], load[1], os.cpu_count()))
    for row in [header] + rows:
        print("  " + " | ".join(c.ljust(w) for c, w in zip(row, widths)))

    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(stack=stack, model=model_label, keras=keras.__version__,
                           python=platform.python_version(),
                           args=vars(args), load_average=load, seconds=seconds, results=results),
                      f, indent=1)
        print("raw numbers written to", args.json)


if __name__ == "__main__":
    main()
