"""Wall-time overhead of Lookahead over a grid: model size x batch size x k, on one Keras 3 backend.

For every MLP size (--sizes, parameters: 784-H-H-10, H solved for the size) and batch size
(--batches), times ``fit`` with the bare inner optimizer, Adam(1e-3), and with each variant at
each k (--ks): ``Lookahead(k, alpha).inject(model)``, ``LookaheadOptimizer(Adam, k, alpha)`` and
``LookaheadCallback(k, alpha)``, and reports each variant's time per step over the bare one.

The method is ``overhead.py``'s, from its functions: per variant a model from the same initial
weights, compiled (and injected) and warmed up by one fit, then many short rounds, the variants
interleaved in an order that alternates per round, each fit timed by ``FitTimer``, and the median
and 25-75% range of the per-round paired ratios variant / bare. One (size, batch) config builds
one bare model, the baseline shared by all its variants and ks, and one model per variant and k
(k is fixed when the model is injected or compiled). The bare model sits in the middle of the
order, so no variant runs far from it in time. Models are freed between configs.

Rounds are sized to the step time, so that the interleaved fits of every config take about
--budget seconds of wall time. After the warm-ups (each as many steps as a round's multiple of
k, so every variant has synced before timing starts), one or two more fits of the bare model give
its step time and a fit's wall time outside the timed steps (some 50 ms on TensorFlow). Steps
per round: a multiple of every k up to 100, so that each round holds the same number of syncs (a
larger k, such as 1000, measures the steps that do not sync: at most one sync falls in a round),
and as many,
up to 100, as leave 10 rounds in the budget: a fit's fixed cost inside the timer (about 10 ms on
TensorFlow, 1 ms or less on JAX and torch) is in both times of a ratio and pulls it towards 1,
so rounds are kept long. Rounds: as many as fit the budget, even (as many in each order), from
--min-rounds to 30. Big models get --min-rounds rounds of one multiple of k, and overrun the
budget. ``--rounds`` / ``--steps-per-round`` fix either.

The lower bound drawn next to each k: a sync reads the fast and slow weights and writes both,
16 bytes per float32 parameter, so with P parameters, memory bandwidth B and bare step time t it
costs at least 16 P / B every k steps: ratio >= 1 + 16 P / (B k t). B is measured here, before
the configs, as the best of a few ``np.copyto`` of 256 MiB (bytes read + written per second), on
one thread and on one thread per CPU; the higher is used.

Outputs, for --out PREFIX (default ``sweep-<backend>``): PREFIX.md (the table also printed),
PREFIX.json (raw per-round seconds and ratios, rewritten after each config) and PREFIX.png (ratio
vs parameter count, a panel per batch size, a line per variant and k, IQR as error bars, the
bounds dash-dotted). ``--combine A.json B.json ... --out PREFIX`` merges runs of several
backends into one PREFIX.md and one PREFIX.png (a row of panels per backend), without Keras.

    PYTHONPATH=. KERAS_BACKEND=jax python benchmarks/sweep.py --quick --out sweep-jax
    python benchmarks/sweep.py --combine sweep-jax.json sweep-tensorflow.json sweep-torch.json \\
        --out sweep
"""
import argparse
import datetime
import gc
import json
import math
import os
import platform
import sys
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

KINDS = ("inject", "wrapper", "callback")
DEFAULT_VARIANTS = "inject,wrapper,callback@5"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                    "TF_NUM_INTEROP_THREADS", "XLA_FLAGS")  # recorded with the results
MAX_ROUNDS = 30
ROUNDS_BEFORE_LONGER = 10  # rounds lengthen up to MAX_STEPS_PER_ROUND before they multiply
MAX_STEPS_PER_ROUND = 100
PRESETS = {  # --budget seconds of interleaved fits per config, --min-rounds
    "full": dict(budget=60.0, min_rounds=6),
    "quick": dict(budget=12.0, min_rounds=2),
}


# ---------------------------------------------------------------- arguments

def parse_size(text):
    """Parameter count from '0.1M', '500k', '2e6' or '20000000'."""
    text = text.strip()
    scale = {"k": 1e3, "m": 1e6}.get(text[-1:].lower(), 1.0)
    return int(round(float(text[:-1] if scale != 1.0 else text) * scale))


def hidden_for(params):
    """H of the 784-H-H-10 MLP closest to ``params``: H^2 + 796 H + 10 parameters."""
    return max(1, int(round((-796 + math.sqrt(796 ** 2 + 4 * (params - 10))) / 2)))


def parse_variants(text, ks):
    """[(kind, k)] from 'inject,wrapper,callback@5': a kind at every k of ``ks``, or at the
    ks after '@' ('callback@1/5'), whether or not they are in ``ks``."""
    found = []
    for item in text.split(","):
        kind, _, at = item.strip().partition("@")
        if kind not in KINDS:
            raise SystemExit("unknown variant {!r}: choose from {}".format(kind, ", ".join(KINDS)))
        for k in ([int(k) for k in at.split("/")] if at else ks):
            if (kind, k) not in found:
                found.append((kind, k))
    return sorted(found, key=lambda v: (KINDS.index(v[0]), v[1]))


def variant_name(kind, k):
    return "{} k={}".format(kind, k)


def csv(convert):
    return lambda text: [convert(item) for item in text.split(",") if item.strip()]


# ---------------------------------------------------------------- measuring

def memory_bandwidth(megabytes=256, repeats=5):
    """{'single', 'threads', 'multi', 'GBps'}: GB/s (1e9 bytes read + written per second) of the
    best of ``repeats`` np.copyto of ``megabytes`` MiB, on one thread and split over one thread
    per CPU (numpy releases the GIL while it copies); 'GBps' is the higher."""
    src = np.ones(megabytes * 2 ** 20 // 4, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in
    threads = os.cpu_count() or 1
    bounds = np.linspace(0, src.size, threads + 1).astype(int)
    parts = [(dst[a:b], src[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

    def copy_threaded():
        workers = [threading.Thread(target=np.copyto, args=part) for part in parts]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def best(copy):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            copy()
            times.append(time.perf_counter() - start)
        return 2 * src.nbytes / min(times) / 1e9

    single = best(lambda: np.copyto(dst, src))
    multi = best(copy_threaded)
    return dict(megabytes=megabytes, single=single, threads=threads, multi=multi,
                GBps=max(single, multi))


def plan(step_seconds, n_models, unit, budget, rounds=None, steps=None, min_rounds=3,
         fit_seconds=0.0):
    """(rounds, steps per round) for about ``budget`` seconds of ``n_models`` interleaved fits:
    steps a multiple of ``unit``, at most 100, as many as 10 rounds allow (a fit's fixed cost,
    ~10 ms on TensorFlow, is in both times of a ratio and dilutes it: long rounds keep it
    small); then rounds, even, from ``min_rounds`` to 30. ``fit_seconds``: a fit's wall time
    outside its timed steps."""
    step_seconds = max(step_seconds, 1e-6)
    per_model = budget / (n_models * step_seconds)  # steps each within the budget
    top = max(unit, MAX_STEPS_PER_ROUND // unit * unit)
    if steps:
        steps = -(-steps // unit) * unit
    else:
        steps = min(top, max(unit, int(per_model / (rounds or ROUNDS_BEFORE_LONGER))
                             // unit * unit))
    if not rounds:
        fits = budget / (n_models * (steps * step_seconds + fit_seconds))
        rounds = min(MAX_ROUNDS, max(min_rounds, int(fits)))
        rounds += rounds % 2  # as many rounds in each order
    return rounds, steps


def calibrate(model, timer, callbacks, x, y, fit_kwargs):
    """(seconds per step, wall seconds outside the timed steps) of one fit, with the
    ``gc.collect()`` that ``interleave`` runs before each."""
    start = time.perf_counter()
    gc.collect()
    model.fit(x, y, callbacks=callbacks, **fit_kwargs)
    return timer.seconds / timer.steps, max(0.0, time.perf_counter() - start - timer.seconds)


def lower_bound(params, k, step_seconds, bandwidth_GBps, bytes_per_param=16):
    """1 + (bytes_per_param * params / bandwidth) / (k * step_seconds)."""
    return 1.0 + bytes_per_param * params / (bandwidth_GBps * 1e9) / (k * step_seconds)


def run_config(shape, batch, variants, args, unit, bandwidth):
    """Builds, warms up and times the bare model and every (kind, k) variant for one config;
    ``shape`` is a hidden width H (784-H-H-10) or a shape of ``overhead.build_model``."""
    import keras
    from keras_lookahead import LookaheadOptimizer
    from overhead import build_model, input_shape, interleave, paired_ratios, prepare, shape_label

    started = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    rng = np.random.RandomState(args.seed)

    def data(steps):
        n = steps * batch  # one epoch = one round, no partial batch
        return (rng.rand(n, *input_shape(shape)).astype("float32"),
                rng.randint(0, 10, size=n).astype("int32"))

    adam = lambda: keras.optimizers.Adam(1e-3)  # noqa: E731
    setups = {"bare": (adam, False, 1)}
    for kind, k in variants:
        if kind == "wrapper":
            make = lambda k=k: LookaheadOptimizer(adam(), k=k, alpha=args.alpha)  # noqa: E731
        else:
            make = adam
        setups[variant_name(kind, k)] = (make, {"inject": True, "wrapper": False,
                                                "callback": "callback"}[kind], k)
    others = [variant_name(kind, k) for kind, k in variants]
    order = others[:len(others) // 2] + ["bare"] + others[len(others) // 2:]

    reference = build_model(shape)
    initial, label = reference.get_weights(), shape_label(shape, reference)
    params = int(sum(np.prod(w.shape) for w in reference.trainable_weights))
    n_variables = len(reference.trainable_weights)
    del reference
    bytes_per_param = 4 * initial[0].itemsize  # read fast and slow, write both
    fit_kwargs = dict(batch_size=batch, epochs=1, shuffle=False, verbose=0)
    x, y = data(unit)  # a warm-up holds a sync at every k
    models, timers, callbacks = {}, {}, {}
    for name in order:
        make, inject, k = setups[name]
        models[name], timers[name], callbacks[name] = prepare(
            shape, initial, make, inject, k, args.alpha, x, y, fit_kwargs)
    del initial
    step_seconds, fit_seconds = calibrate(models["bare"], timers["bare"], callbacks["bare"], x, y,
                                          fit_kwargs)
    if step_seconds < 0.02 and unit < MAX_STEPS_PER_ROUND:  # again, longer: fit's fixed cost
        x, y = data(MAX_STEPS_PER_ROUND // unit * unit)
        step_seconds, fit_seconds = calibrate(models["bare"], timers["bare"], callbacks["bare"],
                                              x, y, fit_kwargs)
    warmup = time.perf_counter() - started
    rounds, steps = plan(step_seconds, len(order), unit, args.budget, args.rounds,
                         args.steps_per_round, args.min_rounds, fit_seconds)
    print("  {}, batch {}: warm-up {:.0f} s, {:.2f} ms/step -> {} rounds x {} "
          "steps x {} models, about {:.0f} s".format(
              label, batch, warmup, 1e3 * step_seconds, rounds, steps, len(order),
              rounds * len(order) * (steps * step_seconds + fit_seconds)), flush=True)
    x, y = data(steps)
    load_before = os.getloadavg()[0]
    seconds = interleave(models, callbacks, timers, order, rounds, steps, x, y, fit_kwargs)
    load = (load_before, os.getloadavg()[0])

    bare_step = float(np.median(seconds["bare"])) / steps
    results = {}
    for kind, k in variants:
        name = variant_name(kind, k)
        ratios, q25, median, q75 = paired_ratios(seconds[name], seconds["bare"])
        results[name] = dict(variant=kind, k=k, ratios=ratios.tolist(), median=float(median),
                             q25=float(q25), q75=float(q75),
                             bound=lower_bound(params, k, bare_step, bandwidth["GBps"],
                                               bytes_per_param))
    del models, timers, callbacks, x, y
    keras.backend.clear_session()
    gc.collect()
    return dict(target_params=None, shape=str(shape), model=label, variables=n_variables,
                hidden=shape if isinstance(shape, int) else None, params=params, batch=batch,
                rounds=rounds,
                steps_per_round=steps, order=order, bytes_per_param_per_sync=bytes_per_param,
                calibration_s_per_step=step_seconds, fit_s_outside_timer=fit_seconds,
                bare_s_per_step=bare_step,
                warmup_s=warmup, elapsed_s=time.perf_counter() - started, load_average=load,
                seconds=seconds, results=results)


def measure(args):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import keras
    from overhead import stack_name

    if int(keras.__version__.split(".")[0]) < 3:
        raise SystemExit("sweep.py needs Keras 3 (KERAS_BACKEND=jax|tensorflow|torch); found "
                         "Keras {}. overhead.py also covers tf.keras 2.x.".format(
                             keras.__version__))
    backend = keras.backend.backend()
    preset = PRESETS["quick" if args.quick else "full"]
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    variants = parse_variants(args.variants, args.ks)
    if not variants:
        raise SystemExit("no variants to time")
    unit = 1
    for _, k in variants:
        if k <= MAX_STEPS_PER_ROUND:  # a larger k measures steps without syncs: no alignment
            unit = unit * k // math.gcd(unit, k)
    prefix = args.out or "sweep-" + backend
    if os.path.dirname(prefix):
        os.makedirs(os.path.dirname(prefix), exist_ok=True)

    started = time.perf_counter()
    stack = stack_name()
    bandwidth = memory_bandwidth()
    run = dict(stack=stack, backend=backend, keras=keras.__version__,
               python=platform.python_version(), numpy=np.__version__,
               machine=platform.platform(), cpus=os.cpu_count(), argv=sys.argv[1:],
               args=vars(args), date=datetime.datetime.now().isoformat(timespec="seconds"),
               environment={name: os.environ[name] for name in THREAD_VARIABLES
                            if name in os.environ},
               bandwidth=bandwidth, configs=[])
    print("{}, {} CPUs{}: memory bandwidth {:.1f} GB/s ({:.1f} on one thread, {:.1f} on {})"
          .format(stack, os.cpu_count(), "".join(", {}={}".format(*item) for item in sorted(
              run["environment"].items())), bandwidth["GBps"], bandwidth["single"],
              bandwidth["multi"], bandwidth["threads"]))
    print("variants {}, alpha {}, about {:.0f} s of interleaved fits per config, rounds of a "
          "multiple of {} steps".format(", ".join(variant_name(*v) for v in variants),
                                        args.alpha, args.budget, unit), flush=True)
    shapes = args.shapes or [hidden_for(target) for target in args.sizes]
    run["axis"] = "variables" if args.shapes else "params"
    for shape in shapes:
        for batch in args.batches:
            config = run_config(shape, batch, variants, args, unit, bandwidth)
            if not args.shapes:
                config["target_params"] = args.sizes[shapes.index(shape)]
            run["configs"].append(config)
            run["elapsed_s"] = time.perf_counter() - started
            with open(prefix + ".json", "w") as f:
                json.dump(run, f, indent=1)
            print("  " + ", ".join("{} {:.3f}".format(name, r["median"])
                                   for name, r in config["results"].items())
                  + "  ({:.0f} s)".format(config["elapsed_s"]), flush=True)
    run["bandwidth_after"] = memory_bandwidth()
    run["elapsed_s"] = time.perf_counter() - started
    with open(prefix + ".json", "w") as f:
        json.dump(run, f, indent=1)
    report([run], prefix)
    print("{:.1f} min in all; raw numbers in {}.json".format(run["elapsed_s"] / 60, prefix))


# ---------------------------------------------------------------- reporting

def columns(runs):
    """The (kind, k) variants and the ks, in order, over all ``runs``."""
    variants, ks = set(), set()
    for run in runs:
        for config in run["configs"]:
            for r in config["results"].values():
                variants.add((r["variant"], r["k"]))
                ks.add(r["k"])
    return sorted(variants, key=lambda v: (KINDS.index(v[0]), v[1])), sorted(ks)


def table(runs):
    """Markdown table: a row per run and config, a column per variant and k (median paired ratio
    and 25-75% range), then the lower bound at each k."""
    variants, ks = columns(runs)
    with_backend = len(runs) > 1
    header = (["backend"] if with_backend else []) + [
        "model", "batch", "bare ms/step", "rounds x steps"] + [
        variant_name(*v) for v in variants] + ["bound k={}".format(k) for k in ks]
    rows = []
    for run in runs:
        for c in run["configs"]:
            bounds = {k: lower_bound(c["params"], k, c["bare_s_per_step"], run["bandwidth"]["GBps"],
                                     c["bytes_per_param_per_sync"]) for k in ks}
            cells = [run["backend"]] if with_backend else []
            cells += [_model_cell(c), str(c["batch"]),
                      "{:.2f}".format(1e3 * c["bare_s_per_step"]),
                      "{} x {}".format(c["rounds"], c["steps_per_round"])]
            for v in variants:
                r = c["results"].get(variant_name(*v))
                cells.append("{:.3f} ({:.3f}-{:.3f})".format(r["median"], r["q25"], r["q75"])
                             if r else "")
            cells += ["{:.3f}".format(bounds[k]) for k in ks]
            rows.append(cells)
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    right = [i for i, name in enumerate(header) if name not in ("backend", "model")]

    def line(cells):
        return "| " + " | ".join(c.rjust(w) if i in right else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    rule = "|" + "|".join("-" * (w + 1) + (":" if i in right else "-")
                          for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule] + [line(row) for row in rows])


def _model_cell(config):
    if config.get("hidden"):
        return "{:,} (H={})".format(config["params"], config["hidden"])
    return config.get("model", "").replace(": ", ", ")


def describe(run):
    load = [c["load_average"] for c in run["configs"]]
    variables = "".join(", {}={}".format(*item)
                        for item in sorted(run.get("environment", {}).items()))
    return ("{stack}, {cpus} CPUs{variables}, numpy {numpy}, Python {python}, {date}: memory "
            "bandwidth {bw:.1f} GB/s; {minutes:.1f} min; 1-min load average {lo:.1f}-{hi:.1f}"
            .format(bw=run["bandwidth"]["GBps"], minutes=run.get("elapsed_s", 0) / 60,
                    lo=min(min(a) for a in load), hi=max(max(a) for a in load),
                    variables=variables, **run))


def report(runs, prefix):
    if os.path.dirname(prefix):
        os.makedirs(os.path.dirname(prefix), exist_ok=True)
    text = table(runs)
    print("\n" + text + "\n")
    lines = ["# Lookahead overhead sweep", ""]
    lines += ["- " + describe(run) for run in runs]
    lines += ["", "Cells: median wall-time ratio per step over the bare Adam(1e-3) (1.000 = no "
              "overhead), with the 25-75% range of the per-round paired ratios. `bound k=...`: "
              "the ratio the sync's memory traffic alone implies, 1 + 16 P / (B k t), B the "
              "measured memory bandwidth and t the bare step time.", "", text, "",
              "![overhead vs parameters]({})".format(os.path.basename(prefix) + ".png"), ""]
    with open(prefix + ".md", "w") as f:
        f.write("\n".join(lines))
    try:
        plot(runs, prefix + ".png")
    except ImportError as e:
        print("no plot ({}): pip install matplotlib, then --combine the JSON".format(e))
        print("wrote {}.md".format(prefix))
    else:
        print("wrote {0}.md and {0}.png".format(prefix))


def plot(runs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants, ks = columns(runs)
    axis = runs[0].get("axis", "params")  # x: parameters, or trainable variables
    batches = sorted({c["batch"] for run in runs for c in run["configs"]})
    colors = {k: "C{}".format(i) for i, k in enumerate(ks)}
    styles = dict(inject=("-", "o"), wrapper=("--", "s"), callback=(":", "^"))
    fig, axes = plt.subplots(len(runs), len(batches), squeeze=False, sharex=True, sharey="row",
                             figsize=(5.5 * len(batches) + 2.5, 3.8 * len(runs) + 0.6))
    for row, run in zip(axes, runs):
        for ax, batch in zip(row, batches):
            configs = sorted((c for c in run["configs"] if c["batch"] == batch
                              and (axis == "params" or not c["shape"].startswith("conv"))),
                             key=lambda c: c[axis])
            ax.axhline(1.0, color="black", linewidth=0.8)
            for i, (kind, k) in enumerate(variants):
                name = variant_name(kind, k)
                points = [(c[axis], c["results"][name]) for c in configs
                          if name in c["results"]]
                if not points:
                    continue
                dodge = 10 ** (0.012 * (i - (len(variants) - 1) / 2))  # keep the bars apart
                xs = [p * dodge for p, _ in points]
                med = np.array([r["median"] for _, r in points])
                err = [med - [r["q25"] for _, r in points], [r["q75"] for _, r in points] - med]
                linestyle, marker = styles[kind]
                ax.errorbar(xs, med, yerr=err, color=colors[k], linestyle=linestyle,
                            marker=marker, markersize=4, capsize=2, linewidth=1.3, label=name)
            for k in ks:
                if configs:
                    ax.plot([c[axis] for c in configs],
                            [lower_bound(c["params"], k, c["bare_s_per_step"],
                                         run["bandwidth"]["GBps"], c["bytes_per_param_per_sync"])
                             for c in configs],
                            color=colors[k], linestyle="-.", marker="_", markersize=9,
                            linewidth=0.9, alpha=0.7, label="bound k={}".format(k))
            ax.set_xscale("log")
            ax.set_title("{}, batch {}".format(run["backend"], batch), fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
        row[0].set_ylabel("time per step / bare Adam")
    for ax in axes[-1]:
        ax.set_xlabel("parameters" if axis == "params" else
                      "trainable variables (at a fixed parameter count)")
    handles = {}
    for ax in axes.flat:  # a panel may lack a variant: collect every label once
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    labels = [variant_name(*v) for v in variants] + ["bound k={}".format(k) for k in ks]
    labels = [label for label in labels if label in handles]
    fig.legend([handles[label] for label in labels], labels, loc="center right", fontsize=8,
               frameon=False)
    fig.suptitle("Lookahead overhead (median, 25-75% bars; dash-dot: memory-traffic bound)",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 1 - 2.3 / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def combine(paths, prefix):
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append(json.load(f))
    missing = [path for path, run in zip(paths, runs) if not run.get("configs")]
    if missing:
        raise SystemExit("no configs in " + ", ".join(missing))
    report(runs, prefix)


# ---------------------------------------------------------------- main

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="less time per config: --budget {budget:.0f} --min-rounds "
                             "{min_rounds} (default --budget {full[budget]:.0f} --min-rounds "
                             "{full[min_rounds]})".format(full=PRESETS["full"],
                                                          **PRESETS["quick"]))
    parser.add_argument("--sizes", type=csv(parse_size), default="0.1M,0.5M,2M,5M,20M",
                        help="parameter counts to aim at (default %(default)s)")
    parser.add_argument("--shapes", type=csv(str),
                        help="instead of --sizes, model shapes of overhead.py (e.g. "
                             "deep:6,deep:38,deep:150,deep:302,deep:602,conv): the plot's x "
                             "axis is then the number of trainable variables (conv shapes only "
                             "in the table)")
    parser.add_argument("--batches", type=csv(int), default="32,256",
                        help="(default %(default)s)")
    parser.add_argument("--ks", type=csv(int), default="1,5,10", help="(default %(default)s)")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS,
                        help="kinds among {}, each at every --ks or at the ks after '@' "
                             "(e.g. callback@1/5); default %(default)s".format(", ".join(KINDS)))
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--budget", type=float,
                        help="wall seconds of interleaved fits per config (not counting the "
                             "warm-ups)")
    parser.add_argument("--min-rounds", type=int)
    parser.add_argument("--rounds", type=int, help="fixed rounds per config")
    parser.add_argument("--steps-per-round", type=int,
                        help="fixed steps per round (rounded up to a multiple of every k)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", metavar="PREFIX",
                        help="write PREFIX.json, PREFIX.md, PREFIX.png (default sweep-<backend>,"
                             " or sweep with --combine)")
    parser.add_argument("--combine", nargs="+", metavar="JSON",
                        help="merge these runs' JSON into one table and plot; measure nothing")
    args = parser.parse_args()
    if args.combine:
        combine(args.combine, args.out or "sweep")
    else:
        measure(args)


if __name__ == "__main__":
    main()
