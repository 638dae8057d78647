"""What Lookahead adds to the first training step (tracing, graph building, XLA compilation),
measured in fresh processes.

Each measurement is a new Python process (``--child``) that builds the model of
``overhead.build_model`` (``--model``, a deep MLP of 302 variables by default), compiles it with
Adam(1e-3) (bare, injected, wrapped in ``LookaheadOptimizer``, given a ``LookaheadCallback``, on
Keras 3 ``overhead.state_only_adam`` (not Lookahead: the floor of per-weight state), or, on
tf.keras 2.11+ / tf_keras, over legacy Adam, bare, injected and (``tensorflow_addons``
importable) TF Addons' ``Lookahead``)
and times one ``fit`` of one batch, from the call to the end of that batch
(``on_train_batch_end``): what a user waits for before training starts. Importing Keras and
building the model are not timed; nothing is cached between processes (each traces and
compiles anew).

The variants run interleaved over ``--repeats`` rounds, in an order that alternates per round;
the report is, per variant, the median over rounds of the paired ratio variant / bare (the
legacy variants over bare legacy Adam), with the 25-75% range, and the median seconds.

    PYTHONPATH=. KERAS_BACKEND=jax python benchmarks/first_step.py --repeats 5 \\
        --json benchmarks/results/first-step-jax.json
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np

import fresh_process

HERE = os.path.dirname(os.path.abspath(__file__))


def child(variant, shape, k, alpha, batch):
    """In a fresh process: build, compile (attach), time the first step; print the seconds."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, HERE)
    import keras
    from keras_lookahead import Lookahead, LookaheadCallback, LookaheadOptimizer
    from overhead import build_model, input_shape, parse_shape, state_only_adam

    keras.utils.set_random_seed(0)
    shape = parse_shape(shape)
    model = build_model(shape)
    legacy = variant in ("tfa", "bare-legacy", "inject-legacy")
    adam = keras.optimizers.legacy.Adam(1e-3) if legacy else keras.optimizers.Adam(1e-3)
    if variant == "state-only":
        adam = state_only_adam()
    elif variant == "wrapper":
        adam = LookaheadOptimizer(adam, k=k, alpha=alpha)
    elif variant == "tfa":
        import tensorflow_addons as tfa
        adam = tfa.optimizers.Lookahead(adam, sync_period=k, slow_step_size=alpha)
    model.compile(optimizer=adam, loss="sparse_categorical_crossentropy")
    if variant.startswith("inject"):
        Lookahead(k=k, alpha=alpha).inject(model)
    rng = np.random.RandomState(0)
    x = rng.rand(batch, *input_shape(shape)).astype("float32")
    y = rng.randint(0, 10, size=batch).astype("int32")

    class Stop(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.end = time.perf_counter()

    stop = Stop()
    callbacks = [stop] + ([LookaheadCallback(k=k, alpha=alpha)] if variant == "callback" else [])
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False, callbacks=callbacks)
    print(json.dumps(dict(seconds=stop.end - start)))


def variants():
    """The variants this stack can run, with the baseline of each."""
    import keras
    found = [("bare", None), ("inject", "bare"), ("wrapper", "bare"), ("callback", "bare")]
    if int(keras.__version__.split(".")[0]) >= 3:
        found.append(("state-only", "bare"))
    else:
        # the legacy optimizers (OptimizerV2): inject makes their state before the first step
        if hasattr(keras.optimizers, "legacy"):
            found += [("bare-legacy", None), ("inject-legacy", "bare-legacy")]
        try:
            import tensorflow_addons  # noqa: F401
        except ImportError:
            print("tensorflow_addons is not importable: TF Addons' Lookahead is not timed.")
        else:
            found += [("tfa", "bare-legacy")] if hasattr(keras.optimizers, "legacy") else []
    return found


def run_child(variant, args):
    return fresh_process.run(
        os.path.abspath(__file__),
        ["--child", variant, "--model", args.model, "--k", args.k, "--alpha", args.alpha,
         "--batch-size", args.batch_size], variant)["seconds"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="deep:302", help="a shape of overhead.py "
                        "(default %(default)s)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.model, args.k, args.alpha, args.batch_size)

    sys.path.insert(0, HERE)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from overhead import stack_name
    stack = stack_name()
    specs = variants()
    names = [name for name, _ in specs]
    seconds = {name: [] for name in names}
    print("{}, model {}: {} rounds of {} fresh processes".format(
        stack, args.model, args.repeats, len(names)), flush=True)
    for r in range(args.repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            seconds[name].append(run_child(name, args))
        print("  round {}: ".format(r + 1) + ", ".join(
            "{} {:.2f} s".format(name, seconds[name][-1]) for name in names), flush=True)
    results = {}
    print("\n{}, model {}: first step (trace, compile, one batch)".format(stack, args.model))
    for name, baseline in specs:
        median_s = float(np.median(seconds[name]))
        entry = dict(seconds=seconds[name], median_s=median_s, baseline=baseline)
        line = "  {:12s} {:7.2f} s".format(name, median_s)
        if baseline:
            ratios = np.array(seconds[name]) / np.array(seconds[baseline])
            q25, med, q75 = np.percentile(ratios, [25, 50, 75])
            entry.update(ratios=ratios.tolist(), median=float(med), q25=float(q25),
                         q75=float(q75))
            line += "  x{:.2f} ({:.2f}-{:.2f}) over {}".format(med, q25, q75, baseline)
        results[name] = entry
        print(line)
    if args.json:
        import keras
        with open(args.json, "w") as f:
            json.dump(dict(stack=stack, model=args.model, keras=keras.__version__,
                           python=platform.python_version(), args=vars(args), results=results),
                      f, indent=1)
        print("raw numbers written to", args.json)


if __name__ == "__main__":
    main()
