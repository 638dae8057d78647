"""Draw what Lookahead does, from a real run of this package: docs/rule.png.

A two-weight linear model, ``y = w1 * x1 + w2 * x2``, fitted by mean squared error to data whose
two features have very different scales, so that SGD with momentum zig-zags across the narrow
valley. ``Lookahead(k=5, alpha=0.5).inject(model)`` then trains it; a callback records the fast
weights after every step and Lookahead's own state (``keras_lookahead.get_state``) after every
sync. The picture shows the fast weights' path, the slow weights' steps (each sync moves them
half way to where the fast weights got, and the fast weights restart there), and the bare
optimizer's path from the same start.

    KERAS_BACKEND=jax python docs/rule_picture.py   # any backend; needs matplotlib
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

import keras_lookahead  # noqa: E402

K, ALPHA, STEPS, START = 5, 0.5, 40, (-2.0, 2.5)


def run(lookahead):
    rng = np.random.RandomState(0)
    x = (rng.randn(256, 2) * [3.0, 0.5]).astype("float32")  # a narrow valley along w2
    y = x @ np.array([[1.0], [1.0]], "float32")  # the minimum is at (1, 1)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False)])
    model.set_weights([np.array([[START[0]], [START[1]]], "float32")])
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.6), loss="mse")
    if lookahead:
        keras_lookahead.Lookahead(k=K, alpha=ALPHA).inject(model)
    fast, slow = [np.array(START)], []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            fast.append(keras.ops.convert_to_numpy(self.model.layers[0].kernel)[:, 0])
            if lookahead and len(fast) % K == 1:  # right after a sync: the new slow weights
                slow.append(np.array(keras_lookahead.get_state(self.model)[1])[:, 0])

    model.fit(x, y, batch_size=32, epochs=STEPS // 8, shuffle=False, verbose=0,
              callbacks=[Record()])
    return np.array(fast), np.array(slow)


def main(path=os.path.join(os.path.dirname(os.path.abspath(__file__)), "rule.png")):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bare, _ = run(lookahead=False)
    fast, slow = run(lookahead=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    w1, w2 = np.meshgrid(np.linspace(-2.5, 3.5, 240), np.linspace(0.6, 2.8, 200))
    ax.contour(w1, w2, 9.0 * (w1 - 1) ** 2 + 0.25 * (w2 - 1) ** 2, levels=12, colors="0.85")
    ax.plot(bare[:, 0], bare[:, 1], "-", color="0.6", lw=1, label="SGD with momentum, bare")
    ax.plot(fast[:, 0], fast[:, 1], ".-", color="tab:blue", lw=1, ms=3,
            label="fast weights (SGD with momentum)")
    anchors = np.vstack([[START], slow])
    ax.plot(anchors[:, 0], anchors[:, 1], "o-", color="tab:red", lw=2, ms=6,
            label="slow weights, after each sync (k = {}, alpha = {})".format(K, ALPHA))
    ax.plot([1], [1], "k*", ms=12, label="minimum")
    ax.set_xlabel("w1")
    ax.set_ylabel("w2")
    ax.set_title("Lookahead: k steps forward, 1 step back (a real run)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print("wrote", path, "-", len(fast) - 1, "steps,", len(slow), "syncs")


if __name__ == "__main__":
    main(*sys.argv[1:])
