"""The floors under Lookahead's cost on models of many variables, measured without Lookahead.

``--backend tensorflow``: what one sync must cost. A sync reads every fast and slow weight and
writes both (``slow += alpha * (fast - slow)``; ``fast = slow``). Three ``tf.function`` versions
of it on plain ``tf.Variable`` pairs are timed, interleaved, per call:

- ``per_variable``: two assign ops per weight pair, as graph ops (what any TF sync of separate
  variables runs, in one function or not);
- ``per_variable_xla``: the same function compiled with XLA (``jit_compile=True``);
- ``one_variable``: all parameters in one fast and one slow variable: the memory traffic alone;
- ``lookahead_xla`` and ``lookahead_plain``: for comparison, Lookahead's own sync branch
  (``compat._tf_sync.sync_levels_branch``, as the train step runs it: in a ``tf.cond``, through the
  packed handles) on the per-variable pairs, as one XLA-compiled function and as plain ops.

The difference between the first two and the last is the executor's cost per variable, the floor
under the sync of a model with many variables; divided by k steps, it is the least a sync at k
can add per step.

``--backend jax``: what the sync adds to the first step. The seconds XLA takes to compile a jitted
function holding only a sync of the model's shapes, as the body of a ``lax.while_loop`` that runs
at most once (what Lookahead traces into the train step, ``per_variable``), against the same
arithmetic on the weights concatenated into one flat pair (``flat``, then split back); and one
call of each, with the loop's body run and not.

Shapes are ``overhead.deep_widths``: V variables (kernels and biases) at about P parameters.

    PYTHONPATH=. python benchmarks/floors.py --backend tensorflow \\
        --json benchmarks/results/floors-tensorflow.json
    PYTHONPATH=. python benchmarks/floors.py --backend jax --json benchmarks/results/floors-jax.json
"""
import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def shapes(variables, params):
    """The weight shapes of the deep MLP with ``variables`` variables (kernels and biases)."""
    sys.path.insert(0, HERE)
    from overhead import deep_widths
    widths = [784] + list(deep_widths(variables, params)) + [10]
    found = []
    for a, b in zip(widths[:-1], widths[1:]):
        found += [(a, b), (b,)]
    return found


def tensorflow_functions(shape_list, alpha):
    """{name: a no-argument callable running one sync}, for the TensorFlow floor."""
    import tensorflow as tf
    rng = np.random.RandomState(0)
    fast = [tf.Variable(rng.rand(*s).astype("float32")) for s in shape_list]
    slow = [tf.Variable(rng.rand(*s).astype("float32")) for s in shape_list]
    total = sum(int(np.prod(s)) for s in shape_list)
    fast_one = tf.Variable(rng.rand(total).astype("float32"))
    slow_one = tf.Variable(rng.rand(total).astype("float32"))

    def sync(pairs):
        for f, s in pairs:
            value = s + alpha * (f - s)
            s.assign(value)
            f.assign(value)
        return tf.constant(0)

    from keras_lookahead.compat import _tf_sync as _tf
    reach, cache = _tf.Reach(), {}

    def lookahead(xla):
        def run():
            available = _tf._xla_available
            _tf._xla_available = lambda: xla
            try:
                branch = _tf.sync_levels_branch(reach, cache, fast, [slow], [alpha], [None])
            finally:
                _tf._xla_available = available
            return tf.cond(tf.constant(True), branch, lambda: tf.constant(True))
        return tf.function(run)

    pairs = list(zip(fast, slow))
    functions = {
        "per_variable": tf.function(lambda: sync(pairs)),
        "per_variable_xla": tf.function(lambda: sync(pairs), jit_compile=True),
        "one_variable": tf.function(lambda: sync([(fast_one, slow_one)])),
        "lookahead_xla": lookahead(True),
        "lookahead_plain": lookahead(False),
    }
    for f in functions.values():  # trace and compile outside the timing
        f().numpy()
    return functions, {}


def jax_functions(shape_list, alpha):
    """({name: a no-argument callable running one call}, {name: compile seconds}), for JAX."""
    import jax
    import jax.numpy as jnp
    rng = np.random.RandomState(0)

    def per_variable(fast, slow):
        new = [s + alpha * (f - s) for f, s in zip(fast, slow)]
        return new, new

    def flat(fast, slow):
        f = jnp.concatenate([v.reshape(-1) for v in fast])
        s = jnp.concatenate([v.reshape(-1) for v in slow])
        new, out, start = s + alpha * (f - s), [], 0
        for v in fast:
            out.append(new[start:start + v.size].reshape(v.shape))
            start += v.size
        return out, out

    def step_of(body):
        def step(pred, fast, slow):
            def loop_body(state):
                _, f, s = state
                f, s = body(f, s)
                return jnp.zeros_like(state[0]), f, s
            _, fast, slow = jax.lax.while_loop(lambda state: state[0], loop_body,
                                               (pred, fast, slow))
            return fast, slow
        return jax.jit(step, donate_argnums=(1, 2))

    functions, compile_s = {}, {}
    for name, body in (("per_variable", per_variable), ("flat", flat)):
        fast = [jnp.asarray(rng.rand(*s).astype("float32")) for s in shape_list]
        slow = [jnp.asarray(rng.rand(*s).astype("float32")) for s in shape_list]
        start = time.perf_counter()
        compiled = step_of(body).lower(jnp.asarray(True), fast, slow).compile()
        compile_s[name] = time.perf_counter() - start
        for pred in (True, False):
            state = {"fast": fast, "slow": slow}

            def call(compiled=compiled, state=state, pred=jnp.asarray(pred)):
                state["fast"], state["slow"] = compiled(pred, state["fast"], state["slow"])
                return state["fast"][0]

            functions["{}_{}".format(name, "sync" if pred else "no_sync")] = call
            fast = [v + 0 for v in fast]
            slow = [v + 0 for v in slow]
    return functions, compile_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow")
    parser.add_argument("--variables", default="6,150,302,602")
    parser.add_argument("--params", type=int, default=700000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()

    if args.backend == "tensorflow":
        import tensorflow as backend
        make = tensorflow_functions
    else:
        import jax as backend
        make = jax_functions
    results = {}
    print("{} {}, {} CPUs: ms per call (median of {} rounds of {} calls)".format(
        args.backend, backend.__version__, os.cpu_count(), args.rounds, args.calls))
    for count in [int(v) for v in args.variables.split(",")]:
        shape_list = shapes(count, args.params)
        functions, compile_s = make(shape_list, args.alpha)
        names = list(functions)
        seconds = {name: [] for name in names}
        for r in range(args.rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                start = time.perf_counter()
                for _ in range(args.calls):
                    out = functions[name]()
                np.asarray(out)
                seconds[name].append((time.perf_counter() - start) / args.calls)
        ms = {name: 1e3 * float(np.median(seconds[name])) for name in names}
        entry = dict(parameters=sum(int(np.prod(s)) for s in shape_list), ms=ms,
                     seconds=seconds, compile_s=compile_s)
        line = "  {:4d} variables: ".format(len(shape_list)) + ", ".join(
            "{} {:.2f} ms".format(name, ms[name]) for name in names)
        if "one_variable" in ms:
            entry["per_variable_us"] = 1e3 * (ms["per_variable"] - ms["one_variable"]) / len(
                shape_list)
            line += "; {:.1f} us per variable".format(entry["per_variable_us"])
        if compile_s:
            line += "; compile " + ", ".join(
                "{} {:.2f} s".format(name, s) for name, s in compile_s.items())
        results[str(len(shape_list))] = entry
        print(line, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(backend=args.backend, version=backend.__version__,
                           python=platform.python_version(), args=vars(args), results=results),
                      f, indent=1)
        print("raw numbers written to", args.json)


if __name__ == "__main__":
    main()
