"""A training process for test_distribute: the suite's MLP with Lookahead (inject, the
wrapper, or each in turn: ``inject,wrapper``) on 2 devices of this CPU, global batch 4; writes
the final weights, the counter and every replica's copy of the slow weights, under the api's
name (``inject/w0``, ...). One process trains both: starting one costs more than its training.

    python distribute_worker.py DATA.npz OUT.npz APIS [--legacy]
        [--worker INDEX --ports PORT0,PORT1]

KLA_FAMILY=keras3 picks Keras 3: on JAX, keras.distribution.DataParallel over 2 host devices
(XLA_FLAGS=--xla_force_host_platform_device_count=2, set here); on TensorFlow,
tf.distribute.MirroredStrategy. Otherwise tf.keras / tf_keras with MirroredStrategy. The 2 CPU
devices are logical devices of the one CPU. With --worker, one of 2 MultiWorkerMirroredStrategy
workers on localhost instead (each with one CPU device).
"""
import argparse
import contextlib
import os
import sys

import numpy as np

EPOCHS, BATCH = 7, 4


def _two_tf_cpus(tf):
    cpu = tf.config.list_physical_devices("CPU")[0] if hasattr(tf.config, "list_physical_devices") \
        else tf.config.experimental.list_physical_devices("CPU")[0]
    configure = getattr(tf.config, "set_logical_device_configuration", None) or \
        tf.config.experimental.set_virtual_device_configuration
    device = getattr(tf.config, "LogicalDeviceConfiguration", None) or \
        tf.config.experimental.VirtualDeviceConfiguration
    configure(cpu, [device(), device()])
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def _replica_values(variable):
    """Each replica's copy of a (mirrored) variable, as numpy."""
    value = variable
    if hasattr(variable, "path"):  # a Keras 3 variable: what the backend holds
        value = variable.value
    shards = getattr(value, "addressable_shards", None)  # JAX: laid out over the devices
    if shards is not None:
        return [np.asarray(s.data) for s in shards]
    values = getattr(value, "values", None)  # tf.distribute: one component per replica
    if values is not None:
        return [v.numpy() if hasattr(v, "numpy") else np.array(v) for v in values]
    return [np.asarray(value)]


def main():
    parser = argparse.ArgumentParser()
    for name in ("data", "out", "api"):
        parser.add_argument(name)
    parser.add_argument("--legacy", action="store_true")
    parser.add_argument("--worker", type=int, default=None,
                        help="MultiWorkerMirroredStrategy: this worker's index; TF_CONFIG is "
                             "built from --ports")
    parser.add_argument("--ports", default="")
    args = parser.parse_args()

    scope = contextlib.nullcontext  # what makes a fresh context per model
    if args.worker is not None:
        import json
        os.environ["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": ["localhost:" + p for p in args.ports.split(",")]},
            "task": {"type": "worker", "index": args.worker}})
        import tensorflow as tf
        multi = getattr(tf.distribute, "MultiWorkerMirroredStrategy", None) or \
            tf.distribute.experimental.MultiWorkerMirroredStrategy
        scope = multi().scope
        keras = __import__("keras") if os.environ.get("KLA_FAMILY") == "keras3" else tf.keras
    elif os.environ.get("KLA_FAMILY") == "keras3" and os.environ.get("KERAS_BACKEND") == "jax":
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        import jax
        import keras
        devices = jax.devices("cpu")
        assert len(devices) == 2, devices
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    else:
        import tensorflow as tf
        strategy = _two_tf_cpus(tf)
        scope = strategy.scope
        if os.environ.get("KLA_FAMILY") == "keras3":
            import keras
        else:
            keras = tf.keras
    import keras_lookahead
    from workers import build_model, inject_if_asked

    from keras_lookahead.lookahead import _state_of
    out = {}
    for api in args.api.split(","):
        with scope():
            model, x, y = build_model(keras, args.data, api, args.legacy)
        inject_if_asked(model, api)
        model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0)

        _, state, _ = _state_of(model)
        slow = state.slow_weights(model.trainable_weights)
        replicas = [_replica_values(s) for s in slow]
        found = {"w%d" % i: w for i, w in enumerate(model.get_weights())}
        found.update({"slow%d_r%d" % (i, r): v for i, copies in enumerate(replicas)
                      for r, v in enumerate(copies)})
        found["counter"] = np.asarray(keras_lookahead.get_state(model)[0])
        found["replicas"] = np.asarray(min(len(c) for c in replicas))
        out.update({api + "/" + name: value for name, value in found.items()})
    np.savez(args.out, **out)
    if args.worker is not None:
        # MultiWorkerMirroredStrategy's collective threads can abort the process while the
        # interpreter tears down, after all the work is done ("terminate called without an
        # active exception", tensorflow/tensorflow#55250; seen once on TF 2.5 here). The results
        # are written: leave without the teardown. A worker that fails before this still fails.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
