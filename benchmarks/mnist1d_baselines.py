"""MNIST-1D baselines: do the paper's reference models reach its published test accuracies here?

Runs ``lookahead-keras compare --data mnist1d`` (the reference setup: Adam lr 1e-2, batch 100,
6000 steps in a fixed batch order, PyTorch's initialization) once per model, over ``--seeds``
seeds, and writes one table, one CSV and one plot for all of them:

    PREFIX.csv   every epoch of every run (compare's columns, and the model)
    PREFIX.json  per model and optimizer: final test accuracy mean and std, the published value,
                 the difference and whether it is within ``--tolerance`` points
    PREFIX.png   test accuracy over training, a panel per model, shaded +-std over seeds, the
                 published value dashed
    PREFIX.md    the table it prints

From the repository root (mnist1d installed: pip install mnist1d==0.0.2.post1):

    export KERAS_BACKEND=jax
    python benchmarks/mnist1d_baselines.py --out benchmarks/results/mnist1d-baselines
    mv benchmarks/results/mnist1d-baselines.png docs/     # PNGs are committed in docs/ only
"""
import argparse
import csv
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_lookahead import compare  # noqa: E402

#: test accuracy, Greydanus & Kobak (ICML 2024), Table/README of the paper's code ("MLP" is its
#: MLPBase, here resmlp)
PUBLISHED = {"logistic": 0.32, "resmlp": 0.68, "cnn": 0.94, "gru": 0.91}
#: the one run (seed 42, 6000 steps) in the paper code's notebooks/mnist1d-classification.ipynb
NOTEBOOK = {"logistic": 0.315, "resmlp": 0.651, "cnn": 0.923, "gru": 0.891}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="logistic,resmlp,cnn,gru")
    parser.add_argument("--optimizers", default="adam,lookahead-adam")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=150, help="150 x 40 batches = 6000 steps")
    parser.add_argument("--tolerance", type=float, default=3.0,
                        help="points of accuracy the mean may differ from the published value")
    parser.add_argument("--out", default="mnist1d-baselines", metavar="PREFIX")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    start, rows, runs, stack = time.time(), [], [], None
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            began = time.time()
            summary = compare.main(["--data", "mnist1d", "--model", model, "--optimizers",
                                    args.optimizers, "--seeds", str(args.seeds), "--epochs",
                                    str(args.epochs), "--no-plot", "--out",
                                    os.path.join(tmp, model)])
            stack = summary["stack"]
            for row in summary["table"]:
                published = PUBLISHED.get(model)
                difference = None if published is None else \
                    100 * (row["val_accuracy_mean"] - published)
                rows.append(dict(row, model=model, published=published,
                                 notebook=NOTEBOOK.get(model), difference_points=difference,
                                 within_tolerance=None if difference is None else
                                 bool(abs(difference) <= args.tolerance),
                                 steps=args.epochs * 40, wall_seconds=time.time() - began))
            runs += [dict(r, model=model) for r in summary["runs"]]
    wall = time.time() - start
    table = format_table(rows, args.tolerance)
    print("\n" + table + "\nwall time: {:.0f} s".format(wall))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".md", "w") as f:
        f.write("{} | MNIST-1D, Adam lr 1e-2, batch 100, {} steps, {} seeds\n\n{}\n\nwall time: "
                "{:.0f} s\n".format(stack, args.epochs * 40, args.seeds, table, wall))
    with open(args.out + ".json", "w") as f:
        json.dump({"stack": stack, "config": vars(args), "wall_seconds": wall, "table": rows,
                   "runs": runs}, f, indent=1)
    with open(args.out + ".csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("model",) + compare.COLUMNS)
        for r in runs:
            h = r["history"]
            for epoch in range(len(h["loss"])):
                writer.writerow([r["model"], r["optimizer"], r["seed"], epoch + 1] +
                                ["{:.6g}".format(h[key][epoch]) for key in compare.COLUMNS[3:]])
    plot(runs, models, args.optimizers.split(","), args.out + ".png", stack)


def format_table(rows, tolerance):
    lines = ["| model | optimizer | published | paper's notebook (1 run) | measured (mean ± std) "
             "| seeds | steps | difference | within ±{:g} |".format(tolerance),
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| {} | {} | {} | {} | {:.1f} ± {:.1f} | {} | {} | {} | {} |".format(
            r["model"], r["optimizer"],
            "-" if r["published"] is None else "{:.0f}".format(100 * r["published"]),
            "-" if r["notebook"] is None else "{:.1f}".format(100 * r["notebook"]),
            100 * r["val_accuracy_mean"], 100 * r["val_accuracy_std"], r["seeds"], r["steps"],
            "-" if r["difference_points"] is None else "{:+.1f}".format(r["difference_points"]),
            "-" if r["within_tolerance"] is None else
            ("yes" if r["within_tolerance"] else "no")))
    return "\n".join(lines)


def plot(runs, models, optimizers, path, stack):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.8), squeeze=False)
    colors = plt.get_cmap("tab10").colors
    for ax, model in zip(axes[0], models):
        for i, name in enumerate(optimizers):
            values = 100 * np.array([r["history"]["val_accuracy"] for r in runs
                                     if r["model"] == model and r["optimizer"] == name])
            steps = 40 * np.arange(1, values.shape[1] + 1)
            mean, std = values.mean(axis=0), values.std(axis=0)
            ax.plot(steps, mean, "-" if "-" in name else "--", color=colors[i], label=name)
            ax.fill_between(steps, mean - std, mean + std, color=colors[i], alpha=0.2,
                            linewidth=0)
        if model in PUBLISHED:
            ax.axhline(100 * PUBLISHED[model], color="k", linestyle=":", label="published")
        ax.set_title(model)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(loc="lower right", fontsize="small")
    fig.suptitle("{} | MNIST-1D reference models, mean ± std over seeds".format(stack),
                 fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
