"""``lookahead-keras sensitivity``: does Lookahead make the inner optimizer less sensitive to its
learning rate?

The paper's claim (Zhang et al. 2019, section 5: "robustness to inner optimization algorithm,
k and alpha"), measured with compare's machinery: for each inner optimizer (SGD with momentum,
Adam) and each learning rate of a grid, the bare optimizer and ``Lookahead(k, alpha)`` around
it train compare's model over the same seeds (every run of a seed from the same initial weights,
on the same batches); Lookahead is evaluated on its slow weights. Then, at one learning rate per
inner optimizer, Lookahead over a grid of k and alpha. The default: MNIST-1D's CNN (``--data
mnist1d --model cnn``, the paper's setup but for the length: 75 epochs, 3000 steps, half the
reference's 6000, so that the whole grid runs in about 20 minutes on 2 CPU cores).

    lookahead-keras sensitivity                                  # the default grid, 5 seeds
    lookahead-keras sensitivity --sgd-lrs 0.01,0.1 --adam-lrs 1e-3 --seeds 2 --epochs 5

Writes, in ``--out``: ``sensitivity.csv`` (one row per configuration: final test accuracy and
loss, mean and std over seeds), ``sensitivity.json`` (the same, the spread of each curve over the
grid, the stack and the arguments), ``runs.csv`` (every epoch of every run, compare's columns,
the optimizer column naming the configuration) and ``sensitivity.png`` (accuracy against
learning rate, log x, shaded +-std, a panel per inner optimizer, and the k x alpha grid).
"""
import argparse
import csv
import json
import os
import sys

import numpy as np

from keras_lookahead import compare

PROG = "lookahead-keras sensitivity"
INNERS = ("sgd", "adam")
DEFAULT_LRS = {"sgd": "0.003,0.01,0.03,0.1,0.3,1", "adam": "1e-4,3e-4,1e-3,3e-3,1e-2,3e-2,1e-1"}
FIELDS = ("phase", "inner", "variant", "lr", "k", "alpha", "seeds", "accuracy_mean",
          "accuracy_std", "loss_mean", "loss_std", "train_loss_mean", "train_loss_std")


def _list(parse_one, option, rule):
    """An argparse type: a comma-separated list of distinct values, each read by
    ``parse_one`` (a compare argparse type), refused as a whole ("numbers {rule}")."""
    def parse(text):
        parts = [p.strip() for p in str(text).split(",") if p.strip()]
        try:
            values = [parse_one(p) for p in parts]
        except argparse.ArgumentTypeError:
            values = []
        if not values or len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(
                f"`{option}` must be a comma-separated list of distinct numbers {rule}. "
                f"Received: {text!r}")
        return values
    return parse


def add_arguments(parser):
    data = parser.add_argument_group("data and model (as compare's)")
    data.add_argument("--data", metavar="PATH.npz|mnist1d", default="mnist1d",
                      help="as compare's --data; an .npz, or digits with --data digits")
    data.add_argument("--val-fraction", type=compare._fraction, default=0.3,
                      help="held out for validation; mnist1d has its own split")
    data.add_argument("--model", choices=compare.MODELS, default="cnn", help="as compare's")
    data.add_argument("--hidden", type=compare._widths, default="64",
                      help="hidden layer widths of mlp")
    train = parser.add_argument_group("training (as compare's)")
    train.add_argument("--epochs", type=compare._positive(int), default=75,
                       help="epochs per run (75 x 40 batches of MNIST-1D: 3000 steps)")
    train.add_argument("--seeds", type=compare._positive(int), default=5,
                       help="runs per configuration")
    train.add_argument("--batch-size", type=compare._positive(int), default=100)
    train.add_argument("--batch-order", choices=("shuffled", "fixed"), default="fixed")
    train.add_argument("--sgd-momentum", type=compare._momentum, default=0.9,
                       help="momentum of sgd")
    grid = parser.add_argument_group("grid")
    grid.add_argument("--inner", default="sgd,adam", type=_names,
                      help="the inner optimizers, comma-separated: sgd (with momentum), adam")
    positive_float = compare._positive(float)
    grid.add_argument("--sgd-lrs", type=_list(positive_float, "--sgd-lrs", "> 0"),
                      default=DEFAULT_LRS["sgd"], help="learning rates of sgd")
    grid.add_argument("--adam-lrs", type=_list(positive_float, "--adam-lrs", "> 0"),
                      default=DEFAULT_LRS["adam"], help="learning rates of adam")
    grid.add_argument("--k", type=compare._positive(int), default=5,
                      help="Lookahead's k over the learning rates")
    grid.add_argument("--alpha", type=compare._unit, default=0.5,
                      help="Lookahead's alpha over the learning rates")
    grid.add_argument("--ks", type=_list(compare._positive(int), "--ks", "> 0"),
                      default="5,10",
                      help="the k of the k x alpha grid")
    grid.add_argument("--alphas", type=_list(compare._unit, "--alphas", "in [0, 1]"),
                      default="0.5,0.8",
                      help="the alpha of the k x alpha grid")
    grid.add_argument("--at-sgd-lr", type=compare._positive(float), default=0.1,
                      help="sgd's learning rate in the k x alpha grid")
    grid.add_argument("--at-adam-lr", type=compare._positive(float), default=1e-3,
                      help="adam's learning rate in the k x alpha grid")
    run = parser.add_argument_group("run")
    run.add_argument("--backend", choices=("jax", "tensorflow", "torch"),
                     help="the Keras 3 backend (sets KERAS_BACKEND)")
    run.add_argument("--out", default="lookahead-sensitivity", metavar="DIR",
                     help="where sensitivity.csv, sensitivity.json, runs.csv and "
                          "sensitivity.png go")
    run.add_argument("--no-plot", action="store_true", help="skip the PNG (no matplotlib)")
    run.add_argument("--quiet", action="store_true", help="no progress lines")


def _names(text):
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or len(set(names)) != len(names) or not set(names) <= set(INNERS):
        inners = ", ".join(INNERS)
        raise argparse.ArgumentTypeError(
            f"`--inner` must name distinct inner optimizers among {inners}. Received: {text!r}")
    return names


def configurations(args):
    """``[(phase, inner, lr, k, alpha)]``, alpha None for the bare optimizer: each learning rate
    bare and with Lookahead(k, alpha), then the k x alpha grid at one learning rate."""
    found = []
    for inner in args.inner:
        for lr in getattr(args, inner + "_lrs"):
            found += [("lr", inner, lr, None, None), ("lr", inner, lr, args.k, args.alpha)]
        at = getattr(args, f"at_{inner}_lr")
        found.append(("k-alpha", inner, at, None, None))
        found += [("k-alpha", inner, at, k, alpha) for k in args.ks for alpha in args.alphas]
    return found


def label(inner, lr, k, alpha):
    if alpha is None:
        return f"{inner}@{lr:g}"
    return f"lookahead-{inner}@{lr:g},k={k},alpha={alpha:g}"


def _train_args(args, inner, lr, k, alpha):
    """The namespace compare.train_one reads, for one configuration."""
    settings = dict(vars(args), sgd_lr=lr, adam_lr=lr, k=k or args.k,
                    alpha=args.alpha if alpha is None else alpha, s=1, h=1.0,
                    eval_weights="slow")
    return argparse.Namespace(**settings)


def run(args):
    keras, stack = compare.keras_stack(args)
    data_path = None if args.data == "digits" else args.data
    x_train, y_train, x_val, y_val, description = compare.load_data(data_path,
                                                                    args.val_fraction)
    data = (x_train, y_train, x_val, y_val)
    configs = configurations(args)
    # a configuration of both phases (the k x alpha grid's point at the k, alpha and learning
    # rate of the first) trains once
    unique = list(dict.fromkeys(label(*c[1:]) for c in configs))
    config = f"{compare.describe_model(args)}, {args.epochs} epochs, batch {args.batch_size} " \
             f"({args.batch_order}), {args.seeds} seeds, sgd momentum {args.sgd_momentum}; " \
             f"Lookahead({args.k}, {args.alpha}) over the learning rates, k in {args.ks} x " \
             f"alpha in {args.alphas} at sgd {args.at_sgd_lr:g} / adam {args.at_adam_lr:g}; " \
             "evaluated on the slow weights"
    print(f"{stack} | {description}\n{config}", flush=True)
    os.makedirs(args.out, exist_ok=True)
    settings = {label(*c[1:]): c[1:] for c in configs}
    jobs = []
    for name in unique:
        inner, lr, k, alpha = settings[name]
        optimizer = inner if alpha is None else "lookahead-" + inner
        jobs.append((name, optimizer, _train_args(args, inner, lr, k, alpha)))
    runs, wall = compare.train_all(keras, data, args, jobs, width=34)
    by_name = {row["optimizer"]: row for row in compare.summarize(runs, unique)}
    rows = []
    for phase, inner, lr, k, alpha in configs:
        row = by_name[label(inner, lr, k, alpha)]
        rows.append({"phase": phase, "inner": inner,
                     "variant": "bare" if alpha is None else "lookahead", "lr": lr,
                     "k": k, "alpha": alpha, "seeds": row["seeds"],
                     "accuracy_mean": row["val_accuracy_mean"],
                     "accuracy_std": row["val_accuracy_std"],
                     "loss_mean": row["val_loss_mean"], "loss_std": row["val_loss_std"],
                     "train_loss_mean": row["loss_mean"], "train_loss_std": row["loss_std"]})
    spread = spreads(rows)
    print("\n" + format_table(rows, spread))
    print(f"wall time: {wall:.0f} s")
    summary = {"stack": stack, "data": description, "config": vars(args),
               "wall_seconds": wall, "table": rows, "spread": spread}
    with open(os.path.join(args.out, "sensitivity.json"), "w") as f:
        json.dump(summary, f, indent=1)
    with open(os.path.join(args.out, "sensitivity.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: f"{value:.6g}" if isinstance(value, float) else value
                             for key, value in row.items()})
    compare.write_csv(runs, os.path.join(args.out, "runs.csv"))
    written = ["sensitivity.csv", "sensitivity.json", "runs.csv"]
    if not args.no_plot:
        try:
            plot(rows, args, os.path.join(args.out, "sensitivity.png"),
                 f"{stack} | {description}\n{config}")
            written.insert(0, "sensitivity.png")
        except ImportError:
            print("matplotlib is not installed: no sensitivity.png (pip install matplotlib, or "
                  "--no-plot to silence this)")
    print(f"wrote {', '.join(written)} in {os.path.abspath(args.out)}")
    return summary


def spreads(rows):
    """Per inner optimizer and variant, over the learning rates: the best and the worst mean
    accuracy, their difference (the sensitivity) and the mean over the grid."""
    found = []
    for inner in dict.fromkeys(r["inner"] for r in rows):
        for variant in ("bare", "lookahead"):
            means = [r["accuracy_mean"] for r in rows if r["phase"] == "lr" and
                     r["inner"] == inner and r["variant"] == variant]
            if means:
                found.append({"inner": inner, "variant": variant, "best": max(means),
                              "worst": min(means), "best_minus_worst": max(means) - min(means),
                              "mean_over_grid": float(np.mean(means))})
    return found


def format_table(rows, spread):
    lines = ["test accuracy (%), final epoch, mean ± std over seeds"]
    for inner in dict.fromkeys(r["inner"] for r in rows):
        mine = [r for r in rows if r["phase"] == "lr" and r["inner"] == inner]
        lrs = list(dict.fromkeys(r["lr"] for r in mine))
        title = inner + " lr"
        lines.append(f"{title:<24}" + "".join(f"{lr:>14g}" for lr in lrs))
        for variant in ("bare", "lookahead"):
            cells = ["{:>14}".format("{:.1f} ± {:.1f}".format(100 * r["accuracy_mean"],
                                                               100 * r["accuracy_std"]))
                     for lr in lrs for r in mine if r["lr"] == lr and r["variant"] == variant]
            title = "  " + variant
            lines.append(f"{title:<24}" + "".join(cells))
        for s in spread:
            if s["inner"] == inner:
                which, best, worst = s["variant"], 100 * s["best"], 100 * s["worst"]
                gap, mean = 100 * s["best_minus_worst"], 100 * s["mean_over_grid"]
                lines.append(f"  {which} over the grid: best {best:.1f}, worst {worst:.1f}, "
                             f"best - worst {gap:.1f}, mean {mean:.1f}")
        grid = [r for r in rows if r["phase"] == "k-alpha" and r["inner"] == inner]
        if grid:
            at = grid[0]["lr"]
            lines.append(f"  at lr {at:g}: " + ", ".join(
                "{} {:.1f} ± {:.1f}".format(
                    "bare" if r["alpha"] is None else "k={} alpha={:g}".format(r["k"],
                                                                               r["alpha"]),
                    100 * r["accuracy_mean"], 100 * r["accuracy_std"]) for r in grid))
    return "\n".join(lines)


def plot(rows, args, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    inners = list(dict.fromkeys(r["inner"] for r in rows))
    fig, axes = plt.subplots(1, len(inners) + 1, figsize=(5.2 * (len(inners) + 1), 4.4),
                             squeeze=False)
    axes = axes[0]
    colors = {"bare": "tab:blue", "lookahead": "tab:orange"}
    for ax, inner in zip(axes, inners):
        for variant in ("bare", "lookahead"):
            mine = [r for r in rows if r["phase"] == "lr" and r["inner"] == inner and
                    r["variant"] == variant]
            lrs = np.array([r["lr"] for r in mine])
            mean = 100 * np.array([r["accuracy_mean"] for r in mine])
            std = 100 * np.array([r["accuracy_std"] for r in mine])
            name = inner if variant == "bare" else (
                f"Lookahead(k={args.k}, alpha={args.alpha:g}) around {inner}")
            ax.plot(lrs, mean, "o-" if variant == "lookahead" else "s--",
                    color=colors[variant], label=name)
            ax.fill_between(lrs, mean - std, mean + std, color=colors[variant], alpha=0.2,
                            linewidth=0)
        ax.set_xscale("log")
        inner_name = f"SGD (momentum {args.sgd_momentum:g})" if inner == "sgd" else "Adam"
        ax.set_xlabel(f"{inner_name} learning rate")
        ax.set_ylabel("final test accuracy (%)")
        ax.set_title(f"inner optimizer: {inner}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="lower center", fontsize="small")
    ax = axes[-1]
    grid = [r for r in rows if r["phase"] == "k-alpha"]
    ticks, tick_names = [], []
    for i, inner in enumerate(inners):
        mine = [r for r in grid if r["inner"] == inner]
        names = ["bare" if r["alpha"] is None else "k={}\nα={:g}".format(r["k"], r["alpha"])
                 for r in mine]
        x = np.arange(len(mine)) + i * (len(mine) + 1)
        ax.bar(x, [100 * r["accuracy_mean"] for r in mine],
               yerr=[100 * r["accuracy_std"] for r in mine], capsize=3,
               color=["tab:blue" if r["alpha"] is None else "tab:orange" for r in mine])
        ticks += list(x)
        tick_names += names
        at = mine[0]["lr"]
        ax.text(x.mean(), 1.02, f"{inner} at lr {at:g}", ha="center",
                transform=ax.get_xaxis_transform(), fontsize="small")
    low = min(100 * (r["accuracy_mean"] - r["accuracy_std"]) for r in grid)
    ax.set_ylim(max(0, low - 5), 100)
    ax.set_xticks(ticks)
    ax.set_xticklabels(tick_names, fontsize="x-small")
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title("Lookahead's k x alpha", pad=18)
    ax.grid(alpha=0.3, axis="y")
    fig.suptitle(title, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = compare.new_parser(PROG, __doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    compare.restart_with_backend(args, "sensitivity", argv)
    return run(args)
