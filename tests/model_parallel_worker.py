"""A training process for test_distribute's ModelParallel test (Keras 3 on JAX, 2 host
devices): a 4-8-2 MLP whose kernels and biases are split over the mesh's "model" axis, with
Lookahead (inject, the wrapper or NestedLookahead), trained under
``keras.distribution.ModelParallel`` and again on one device from the same weights and batches.
Writes both runs' weights and slow weights, and, per weight, whether its slow copies are laid
out like it and whether it is split at all.

    python model_parallel_worker.py OUT.npz {inject,wrapper,nested}
"""
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"

import numpy as np  # noqa: E402

K, ALPHA, EPOCHS, BATCH = 3, 0.5, 4, 8


def train(keras, api, initial, x, y):
    """Build, attach Lookahead, train; returns (model, state's slow levels per weight)."""
    import keras_lookahead
    from keras_lookahead.lookahead import _state_of
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="tanh", name="dense_a")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense_b")(hidden))
    model.set_weights(initial)
    sgd = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    if api == "wrapper":
        model.compile(keras_lookahead.LookaheadOptimizer(sgd, k=K, alpha=ALPHA), loss="mse")
    else:
        model.compile(sgd, loss="mse")
        if api == "nested":
            keras_lookahead.NestedLookahead(k=K, alpha=ALPHA, s=2, h=0.5).inject(model)
        else:
            keras_lookahead.Lookahead(k=K, alpha=ALPHA).inject(model)
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0)
    _, state, _ = _state_of(model)
    levels = 2 if api == "nested" else 1
    slows = [state.slow_weights(model.trainable_weights, level) for level in range(levels)]
    return model, slows


def main():
    out, api = sys.argv[1], sys.argv[2]
    import jax
    import keras
    devices = jax.devices("cpu")
    assert len(devices) == 2, devices
    rng = np.random.RandomState(0)
    x = rng.randn(32, 4).astype("float32")
    y = rng.randn(32, 2).astype("float32")
    initial = [rng.randn(4, 8).astype("float32") * 0.5, rng.randn(8).astype("float32") * 0.1,
               rng.randn(8, 2).astype("float32") * 0.5, rng.randn(2).astype("float32") * 0.1]

    mesh = keras.distribution.DeviceMesh(shape=(1, 2), axis_names=("batch", "model"),
                                         devices=devices)
    layouts = keras.distribution.LayoutMap(mesh)
    layouts["dense_.*kernel"] = (None, "model")
    layouts["dense_.*bias"] = ("model",)
    try:
        distribution = keras.distribution.ModelParallel(layout_map=layouts, batch_dim_name="batch")
    except TypeError:  # Keras 3.0 - 3.3: ModelParallel(device_mesh, layout_map, ...)
        distribution = keras.distribution.ModelParallel(mesh, layouts, batch_dim_name="batch")
    keras.distribution.set_distribution(distribution)
    model, slows = train(keras, api, initial, x, y)
    import keras_lookahead
    result = {"counter": np.asarray(keras_lookahead.get_state(model)[0]),
              "initial": np.concatenate([w.ravel() for w in initial])}
    for i, w in enumerate(model.trainable_weights):
        sharding = w.value.sharding
        result["split%d" % i] = np.asarray(not sharding.is_fully_replicated)
        result["alike%d" % i] = np.asarray(all(
            level[i].value.sharding.is_equivalent_to(sharding, len(w.shape)) for level in slows))
        result["w%d" % i] = np.asarray(w.value)
        for level, copies in enumerate(slows):
            result["slow%d_%d" % (level, i)] = np.asarray(copies[i].value)

    keras.distribution.set_distribution(None)
    model, slows = train(keras, api, initial, x, y)
    for i, w in enumerate(model.trainable_weights):
        result["one_w%d" % i] = np.asarray(w.value)
        for level, copies in enumerate(slows):
            result["one_slow%d_%d" % (level, i)] = np.asarray(copies[i].value)
    np.savez(out, **result)


if __name__ == "__main__":
    main()
