"""Distribution on the engines that exist: tf.distribute.MirroredStrategy over 2 logical CPU
devices (tf.keras / tf_keras on TF 2.x, Keras 3 on TensorFlow) and Keras 3's DataParallel over 2
host devices on JAX. Each run is a new process (devices are set before TensorFlow or JAX starts):
its weights must equal one device with the same global batch (the numpy reference), and every
replica's copy of the slow weights must be that same value."""
import os
import subprocess

import numpy as np
import pytest

import workers
from reference import MLPReference

# Worker processes train with the default compile and the default optimizer family: once per env
# (the legacy optimizers are the default family, so distributed, in TF 2.0 - 2.10's envs).
pytestmark = pytest.mark.once

K, ALPHA, EPOCHS = workers.K, workers.ALPHA, 7


def _why_not(stack):
    if stack.family == "standalone":
        return "standalone Keras has no tf.distribute support"
    if stack.family == "tf" and stack.tf.__version__.startswith("1."):
        return "Keras fit under MirroredStrategy is tested from TensorFlow 2.0"
    if stack.family == "keras3" and stack.backend == "torch":
        return "Keras 3 distributes on JAX (DataParallel) and TensorFlow (tf.distribute) only"
    if stack.family == "keras3" and stack.backend == "tensorflow" and stack.keras_minor < (3, 8):
        # checked: 2 replicas, SGD with momentum, a bare model's weights differ from one
        # device's on Keras 3.0 - 3.7 (TF 2.16 - 2.18) and match from Keras 3.8
        return ("Keras 3.0 - 3.7's fit under MirroredStrategy does not match one device, a bare "
                "model neither")
    if not stack.eager:
        return ("runs in TensorFlow's default execution mode, as the worker process trains "
                "(this run: {})".format(stack.label))
    return None


#: what each worker process trains, one after the other (one process for both: starting one
#: costs more than its training)
APIS = ("inject", "wrapper")


def _reference(w0, x, y):
    ref = MLPReference(w0, lr=0.1, momentum=0.9)
    ref.attach(K, ALPHA)
    ref.fit(x, y, epochs=EPOCHS, batch_size=4)
    return ref


def _results(out, api):
    """What a worker wrote for ``api``, by name."""
    return {name.split("/", 1)[1]: out[name] for name in out.files
            if name.startswith(api + "/")}


def run_worker(stack, data, tmp_path):
    """Run distribute_worker.py in a new process on this stack; returns its npz output."""
    path = str(tmp_path)
    done = subprocess.run(
        workers.command(stack, "distribute_worker.py", workers.write_data(path, data),
                        os.path.join(path, "out.npz"), ",".join(APIS)),
        env=workers.environment(stack), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=600)
    assert done.returncode == 0, done.stdout.decode()[-4000:]
    return np.load(os.path.join(path, "out.npz"))


def test_two_replicas_match_one_device(stack, data, tmp_path):
    """inject and the wrapper, each: the one-device weights, one count per global step, and
    the same slow weights on both replicas."""
    reason = _why_not(stack)
    if reason:
        pytest.skip(reason)
    x, y, w0 = data
    written = run_worker(stack, data, tmp_path)
    ref = _reference(w0, x, y)
    for api in APIS:
        out = _results(written, api)
        assert int(out["counter"]) == 2 * EPOCHS, api  # per global step, not per replica
        for i, expected in enumerate(ref.w):
            np.testing.assert_allclose(out["w%d" % i], expected, atol=2e-5, rtol=0, err_msg=api)
        assert int(out["replicas"]) == 2, api
        for i, expected in enumerate(ref.lookahead.slow):
            for r in range(2):
                np.testing.assert_allclose(out["slow%d_r%d" % (i, r)], expected, atol=2e-5,
                                           rtol=0, err_msg=api)
            np.testing.assert_array_equal(out["slow%d_r0" % i], out["slow%d_r1" % i], api)


def _free_ports(n):
    import socket
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_match_one_device(stack, data, tmp_path):
    """MultiWorkerMirroredStrategy: 2 worker processes on localhost, global batch 4; both end
    with the one-device weights and slow weights (inject and the wrapper, each)."""
    reason = _why_not(stack)
    if reason is None and stack.family == "keras3":
        # checked: a bare Keras 3.15 model on TF 2.21 fails fit under it the same way, with
        # numpy or tf.data input ("Attempt to convert a value (PerReplica...) to a Tensor")
        reason = ("Keras 3's fit does not run under MultiWorkerMirroredStrategy (a bare model "
                  "fails too); Keras 3 is tested with MirroredStrategy and DataParallel")
    if reason is None and stack.family == "tf" and stack.tf_minor < (2, 4):
        reason = "MultiWorkerMirroredStrategy is tested from TensorFlow 2.4 (stable API)"
    if reason:
        pytest.skip(reason)
    x, y, w0 = data
    path = str(tmp_path)
    data_file = workers.write_data(path, data)
    ports = ",".join(str(p) for p in _free_ports(2))
    processes = [subprocess.Popen(
        workers.command(stack, "distribute_worker.py", data_file,
                        os.path.join(path, "out%d.npz" % i), ",".join(APIS), "--worker", i,
                        "--ports", ports),
        env=workers.environment(stack), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for i in range(2)]
    for process in processes:
        output = process.communicate(timeout=600)[0]
        assert process.returncode == 0, output.decode()[-4000:]
    ref = _reference(w0, x, y)
    for i in range(2):
        written = np.load(os.path.join(path, "out%d.npz" % i))
        for api in APIS:
            out = _results(written, api)
            assert int(out["counter"]) == 2 * EPOCHS, api
            for j, (w, s) in enumerate(zip(ref.w, ref.lookahead.slow)):
                np.testing.assert_allclose(out["w%d" % j], w, atol=2e-5, rtol=0, err_msg=api)
                np.testing.assert_allclose(out["slow%d_r0" % j], s, atol=2e-5, rtol=0,
                                           err_msg=api)


@pytest.mark.requires("keras3", "jax", reason="keras.distribution.ModelParallel is Keras 3 on JAX")
@pytest.mark.parametrize("api", ["inject", "wrapper", "nested"])
def test_model_parallel_slow_copies_are_split_like_their_weights(stack, tmp_path, api):
    """keras.distribution.ModelParallel (Keras 3 on JAX, 2 host devices, every kernel and bias
    split over the "model" axis): each slow copy is laid out like its weight (split, not one
    whole copy per device), and training matches one device."""
    out = os.path.join(str(tmp_path), "out.npz")
    done = subprocess.run(workers.command(stack, "model_parallel_worker.py", out, api),
                          env=workers.environment(stack), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=600)
    assert done.returncode == 0, done.stdout.decode()[-4000:]
    result = np.load(out)
    levels = 2 if api == "nested" else 1
    for i in range(4):
        assert bool(result["split%d" % i]), "weight %d is not split: the test shows nothing" % i
        assert bool(result["alike%d" % i]), "slow copy of weight %d is laid out unlike it" % i
        np.testing.assert_allclose(result["w%d" % i], result["one_w%d" % i], atol=2e-5, rtol=0)
        for level in range(levels):
            np.testing.assert_allclose(result["slow%d_%d" % (level, i)],
                                       result["one_slow%d_%d" % (level, i)], atol=2e-5, rtol=0)
    # the hook ran: 16 updates counted (4 epochs of 4 batches), the slow weights moved from the
    # initial ones, and the update after the last sync (step 15, k = 3) left fast != slow
    assert int(result["counter"]) == 16
    slow = np.concatenate([result["slow0_%d" % i].ravel() for i in range(4)])
    fast = np.concatenate([result["w%d" % i].ravel() for i in range(4)])
    assert not np.allclose(slow, result["initial"]) and not np.allclose(slow, fast)
