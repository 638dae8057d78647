"""Peak memory Lookahead adds, per API, as a multiple of the trainable weights' bytes.

Each measurement is a fresh Python process (``--child``): it builds a linear MLP of ``--depth``
hidden Dense layers of ``--width`` units (no activation; input and output ``--width`` wide too,
so the weights are ``(depth + 1) * (width^2 + width)`` float32 numbers), compiles it with SGD
(bare, injected, wrapped in ``LookaheadOptimizer``, injected as ``NestedLookahead``, given a
``LookaheadCallback``, or ``state-only``: bare SGD holding one untouched copy of every weight,
not Lookahead, the floor of any Lookahead with a slow copy per weight), trains it ``--epochs``
epochs of ``--steps`` batches of 32 random rows (k = 1 by default: a sync on every step, the
most a sync can hold at once) and reports two peaks:

- ``rss``: its peak resident memory (``ru_maxrss``), what the operating system sees. It includes
  what the allocator keeps after a free (glibc's arenas, TensorFlow's and XLA's pools), which
  moves by 0.1 - 0.8x the weights between processes of the same variant.
- ``live``: the bytes the backend's own arrays hold at their peak, where the backend can say:
  TensorFlow's allocator peak (``tf.config.experimental.get_memory_info``, in a second process
  with ``TF_CPU_ALLOCATOR_USE_BFC=true``: the default CPU allocator keeps no count); on JAX the
  arrays alive after training plus the temporaries XLA allots the compiled train step
  (``memory_analysis``; its arguments are donated, so it writes the state in place); on
  PyTorch, which keeps no count on the CPU, the peak of the profiler's memory timeline (every
  tensor it sees, by category) over two more steps. The callback's copies are numpy arrays,
  outside every count.

Peaks include what importing the backend takes, so variants are compared with the bare
optimizer, in processes of the same kind:

    extra = (peak(variant) - peak(bare)) / bytes of the trainable weights

Lookahead's state is one slow copy per weight (two for ``NestedLookahead``), so the target is
an extra of 1 (2); what is above it is a temporary or a copy the implementation should not make
(``live``) or memory the allocator keeps (``rss`` above ``live``). Rounds run the variants
interleaved; a peak is the smallest over ``--repeats`` processes (noise only adds to a peak).

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

VARIANTS = ("bare", "state-only", "inject", "wrapper", "nested", "callback")
EXPECTED = {"state-only": 1, "inject": 1, "wrapper": 1, "nested": 2, "callback": 1}
BFC = {"TF_CPU_ALLOCATOR_USE_BFC": "true"}


def _keras3(keras):
    return int(keras.__version__.split(".")[0]) >= 3


def _sgd_with_copies(keras):
    """Keras 3: SGD holding one more copy of every weight, which nothing reads or writes."""
    class StateOnlySGD(keras.optimizers.SGD):
        def build(self, var_list):
            super().build(var_list)
            self._untouched = [self.add_variable_from_reference(v, "untouched")
                               for v in var_list]
            for copy, v in zip(self._untouched, var_list):
                copy.assign(keras.ops.copy(v))  # its own buffer (JAX would alias v's)

    return StateOnlySGD(1e-4)


def _torch_timeline_peak(model, x):
    """PyTorch: the peak, over two more steps of ``fit`` (k = 1 syncs on each), of the bytes of
    the CPU tensors the profiler's memory timeline tracks (all of them, summed over its
    categories)."""
    import torch
    from torch.profiler._memory_profiler import MemoryProfileTimeline

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                profile_memory=True, record_shapes=True, with_stack=True) as prof:
        model.fit(x[:64], x[:64], batch_size=32, epochs=1, verbose=0, shuffle=False)
    _, sizes = MemoryProfileTimeline(prof._memory_profile())._coalesce_timeline(
        torch.device("cpu"))
    return max(sum(categories) for categories in sizes)


def _live_bytes(keras, model, x):
    """The backend's own count of its arrays' peak bytes (module docstring), or None."""
    backend = keras.backend.backend() if _keras3(keras) else "tensorflow"
    if backend == "torch":
        return _torch_timeline_peak(model, x)
    if backend == "tensorflow" and os.environ.get("TF_CPU_ALLOCATOR_USE_BFC") == "true":
        import tensorflow as tf
        return tf.config.experimental.get_memory_info("CPU:0")["peak"]
    if backend == "jax":
        import jax
        state = tuple([v.value for v in variables] for variables in (
            model.trainable_variables, model.non_trainable_variables,
            model.optimizer.variables, model.metrics_variables))
        alive = sum(a.nbytes for a in jax.live_arrays())
        step = jax.jit(model.train_step, donate_argnums=0).lower(state, (x[:32], x[:32]))
        return alive + step.compile().memory_analysis().temp_size_in_bytes
    return None


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
    if variant == "state-only" and _keras3(keras):
        sgd = _sgd_with_copies(keras)
    elif variant == "state-only":  # tf.keras: plain variables beside the model
        import tensorflow as tf
        model.untouched = [tf.Variable(tf.identity(w), trainable=False)
                           for w in model.trainable_weights]
    if variant == "wrapper":
        sgd = LookaheadOptimizer(sgd, k=k, alpha=0.5)
    model.compile(optimizer=sgd, loss="mse")
    if variant == "state-only" and _keras3(keras):
        sgd.build(model.trainable_variables)  # now: built inside fit, TF held no copies (0.1x)
    if variant == "inject":
        Lookahead(k=k, alpha=0.5).inject(model)
    elif variant == "nested":
        NestedLookahead(k=k, alpha=0.5, s=2, h=0.5).inject(model)
    callbacks = [LookaheadCallback(k=k, alpha=0.5)] if variant == "callback" else []
    rng = np.random.RandomState(0)
    x = rng.rand(32 * steps, width).astype("float32")
    model.fit(x, x, batch_size=32, epochs=epochs, verbose=0, shuffle=False, callbacks=callbacks)
    weights = sum(int(np.prod(w.shape)) * 4 for w in model.trainable_weights)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    live = None if variant == "callback" else _live_bytes(keras, model, x)
    print(json.dumps(dict(rss=rss, live=live, weights=weights)))


def run_child(variant, size, args, env=None):
    width, depth = size
    return fresh_process.run(
        os.path.abspath(__file__),
        ["--child", variant, "--sizes", "{}x{}".format(width, depth), "--epochs", args.epochs,
         "--steps", args.steps, "--k", args.k], "{} {}".format(variant, size), env)


def parse_sizes(text):
    sizes = []
    for part in text.split(","):
        width, _, depth = part.partition("x")
        sizes.append((int(width), int(depth)))
    return sizes


def measure(names, size, args, on_tensorflow):
    """Per variant, its peaks over ``args.repeats`` rounds (variants interleaved, the order
    reversed every other round): ``{"rss": [...], "live": [...]}``; and the weights' bytes."""
    peaks = {name: dict(rss=[], live=[]) for name in names}
    weights = None
    for r in range(args.repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            out = run_child(name, size, args)
            peaks[name]["rss"].append(out["rss"])
            weights = out["weights"]
            if on_tensorflow and name != "callback":  # its own process: another allocator
                out = run_child(name, size, args, env=BFC)
            if out["live"] is not None:
                peaks[name]["live"].append(out["live"])
    return peaks, weights


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("1024x12,2048x12"),
                        help="WIDTHxDEPTH, comma-separated (default 1024x12,2048x12)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        (width, depth), = args.sizes
        return child(args.child, width, depth, args.epochs, args.steps, args.k)

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import keras
    from overhead import stack_name
    stack = stack_name()
    on_tensorflow = not _keras3(keras) or keras.backend.backend() == "tensorflow"
    names = ["bare"] + [v for v in args.variants.split(",") if v != "bare"]
    results = {}
    print("{}: peak memory, {} epochs of {} steps, k={}, smallest of {} processes".format(
        stack, args.epochs, args.steps, args.k, args.repeats), flush=True)
    for size in args.sizes:
        peaks, weights = measure(names, size, args, on_tensorflow)
        label = "{}x{}".format(*size)
        bare = {kind: min(found) for kind, found in peaks["bare"].items() if found}
        entry = dict(weights_bytes=weights, peaks=peaks, bare=bare, extra={})
        print("  {}: weights {:.0f} MB, bare peak rss {:.0f} MB".format(
            label, weights / 2**20, bare["rss"] / 2**20))
        for name in names[1:]:
            extra = {kind: (min(found) - bare[kind]) / weights
                     for kind, found in peaks[name].items() if found and kind in bare}
            entry["extra"][name] = extra
            live = "{:5.2f}".format(extra["live"]) if "live" in extra else "  -  "
            print("    {:10s} extra rss {:5.2f}  live {} x weights (Lookahead's state: {})"
                  .format(name, extra["rss"], live, EXPECTED[name]), flush=True)
        results[label] = entry
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(stack=stack, keras=keras.__version__, python=platform.python_version(),
                           args={k: v for k, v in vars(args).items() if k != "sizes"},
                           sizes=[list(s) for s in args.sizes], results=results), f, indent=1)
        print("raw numbers written to", args.json)


if __name__ == "__main__":
    main()
