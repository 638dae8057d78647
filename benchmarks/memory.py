"""Peak memory Lookahead adds, per API, as a multiple of the trainable weights' bytes.

Each measurement is a fresh Python process (``--child``): it builds a linear MLP of ``--depth``
hidden Dense layers of ``--width`` units (no activation; input and output ``--width`` wide too,
so the weights are ``(depth + 1) * (width^2 + width)`` float32 numbers), compiles it with SGD
(bare, injected, wrapped in ``LookaheadOptimizer``, injected as ``NestedLookahead`` or given a
``LookaheadCallback``), trains it ``--epochs`` epochs of ``--steps`` batches of 32 random rows
(k = 1 by default: a sync on every step, the most a sync can hold at once) and prints its peak
resident memory (``ru_maxrss``). Peak memory includes what importing the backend takes, so
variants are compared only with the bare optimizer, in processes of the same kind:

    extra = (peak(variant) - peak(bare)) / bytes of the trainable weights

Lookahead's state is one slow copy per weight (two for ``NestedLookahead``), so the target is
an extra of 1 (2); what is above it is a temporary or a copy the implementation should not make.
Rounds run the variants interleaved; the report is the median per variant.

    PYTHONPATH=. KERAS_BACKEND=tensorflow python benchmarks/memory.py --sizes 1024x12,2048x12 \\
        --json benchmarks/results/memory-tensorflow.json
"""
import argparse
import json
import os
import platform
import resource
import sys

import numpy as np

import fresh_process

VARIANTS = ("bare", "inject", "wrapper", "nested", "callback")
EXPECTED = {"inject": 1, "wrapper": 1, "nested": 2, "callback": 1}


def child(variant, width, depth, epochs, steps, k):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from keras_lookahead import Lookahead, LookaheadCallback, LookaheadOptimizer, NestedLookahead

    keras.utils.set_random_seed(0)
    inputs = keras.Input((width,))
    h = inputs
    for _ in range(depth + 1):
        h = keras.layers.Dense(width)(h)
    model = keras.Model(inputs, h)
    sgd = keras.optimizers.SGD(1e-4)
    if variant == "wrapper":
        sgd = LookaheadOptimizer(sgd, k=k, alpha=0.5)
    model.compile(optimizer=sgd, loss="mse")
    if variant == "inject":
        Lookahead(k=k, alpha=0.5).inject(model)
    elif variant == "nested":
        NestedLookahead(k=k, alpha=0.5, s=2, h=0.5).inject(model)
    callbacks = [LookaheadCallback(k=k, alpha=0.5)] if variant == "callback" else []
    rng = np.random.RandomState(0)
    x = rng.rand(32 * steps, width).astype("float32")
    model.fit(x, x, batch_size=32, epochs=epochs, verbose=0, shuffle=False, callbacks=callbacks)
    weights = sum(int(np.prod(w.shape)) * 4 for w in model.trainable_weights)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    print(json.dumps(dict(peak=peak, weights=weights)))


def run_child(variant, size, args):
    width, depth = size
    return fresh_process.run(
        os.path.abspath(__file__),
        ["--child", variant, "--sizes", "{}x{}".format(width, depth), "--epochs", args.epochs,
         "--steps", args.steps, "--k", args.k], "{} {}".format(variant, size))


def parse_sizes(text):
    sizes = []
    for part in text.split(","):
        width, _, depth = part.partition("x")
        sizes.append((int(width), int(depth)))
    return sizes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("1024x12,2048x12"),
                        help="WIDTHxDEPTH, comma-separated (default 1024x12,2048x12)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        (width, depth), = args.sizes
        return child(args.child, width, depth, args.epochs, args.steps, args.k)

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from overhead import stack_name
    stack = stack_name()
    names = ["bare"] + [v for v in args.variants.split(",") if v != "bare"]
    results = {}
    print("{}: peak memory, {} epochs of {} steps, k={}".format(
        stack, args.epochs, args.steps, args.k), flush=True)
    for size in args.sizes:
        peaks = {name: [] for name in names}
        weights = None
        for r in range(args.repeats):
            for name in (names if r % 2 == 0 else names[::-1]):
                out = run_child(name, size, args)
                peaks[name].append(out["peak"])
                weights = out["weights"]
        bare = float(np.median(peaks["bare"]))
        label = "{}x{}".format(*size)
        entry = dict(weights_bytes=weights, peaks=peaks, bare_peak=bare, extra={})
        print("  {}: weights {:.0f} MB, bare peak {:.0f} MB".format(label, weights / 2**20,
                                                                    bare / 2**20))
        for name in names[1:]:
            extra = (float(np.median(peaks[name])) - bare) / weights
            entry["extra"][name] = extra
            print("    {:9s} peak {:6.0f} MB  extra {:5.2f} x weights (Lookahead's state: {})"
                  .format(name, np.median(peaks[name]) / 2**20, extra, EXPECTED[name]),
                  flush=True)
        results[label] = entry
    if args.json:
        import keras
        with open(args.json, "w") as f:
            json.dump(dict(stack=stack, keras=keras.__version__, python=platform.python_version(),
                           args={k: v for k, v in vars(args).items() if k != "sizes"},
                           sizes=[list(s) for s in args.sizes], results=results), f, indent=1)
        print("raw numbers written to", args.json)


if __name__ == "__main__":
    main()
