"""Bare optimizer vs the same optimizer with Lookahead, on scikit-learn's bundled digits.

Trains one small classifier (64 -> 64 relu -> 10) from the same initial weights, once with the
bare optimizer and once with ``Lookahead(k=5, alpha=0.5).inject(model)``, over a few seeds, and
prints validation accuracy and loss. Needs nothing from the network: the data ships with
scikit-learn. Runs on Keras 3 (any backend: set KERAS_BACKEND) and on tf.keras.

    python examples/demo.py [--epochs 15] [--seeds 3] [--optimizer sgd|adam]
"""
import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

try:
    import keras
    if not keras.__version__.startswith("3"):
        raise ImportError
    set_seed = keras.utils.set_random_seed
except ImportError:  # tf.keras
    import tensorflow as tf
    from tensorflow import keras

    def set_seed(seed):
        np.random.seed(seed)
        tf.random.set_seed(seed)

from keras_lookahead import Lookahead


def make_optimizer(name):
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=1e-3)
    return keras.optimizers.SGD(learning_rate=0.05, momentum=0.9)


def run(x_train, y_train, x_val, y_val, seed, lookahead, args):
    keras.backend.clear_session()
    set_seed(seed)  # the same initial weights and shuffling for both variants
    model = keras.models.Sequential([
        keras.layers.Input((64,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(make_optimizer(args.optimizer), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    if lookahead:
        Lookahead(k=5, alpha=0.5).inject(model)
    start = time.time()
    history = model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, verbose=0,
                        validation_data=(x_val, y_val), shuffle=True)
    seconds = time.time() - start
    key = "val_accuracy" if "val_accuracy" in history.history else "val_acc"
    return history.history[key][-1], history.history["val_loss"][-1], seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    args = parser.parse_args()

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    x_train, x_val, y_train, y_val = train_test_split(
        x, digits.target, test_size=0.3, random_state=0, stratify=digits.target)
    backend = keras.backend.backend() if hasattr(keras.backend, "backend") else "tensorflow"
    print("Keras {} ({}) | digits: {} train / {} validation images | {} epochs, {} seeds, "
          "optimizer {}".format(keras.__version__, backend, len(x_train), len(x_val),
                                args.epochs, args.seeds, args.optimizer))
    rows = []
    for label, lookahead in (("bare " + args.optimizer, False),
                             ("Lookahead(k=5, alpha=0.5)", True)):
        results = np.array([run(x_train, y_train, x_val, y_val, seed, lookahead, args)
                            for seed in range(args.seeds)])
        rows.append((label, results))
        print("  done: " + label, flush=True)
    print()
    print("{:<28} {:>18} {:>18} {:>10}".format("optimizer", "val accuracy", "val loss", "s/run"))
    for label, r in rows:
        print("{:<28} {:>10.4f} ± {:.4f} {:>10.4f} ± {:.4f} {:>10.2f}".format(
            label, r[:, 0].mean(), r[:, 0].std(), r[:, 1].mean(), r[:, 1].std(), r[:, 2].mean()))


if __name__ == "__main__":
    main()
