"""Exact resume: train n steps, save, restore into a new model, train m more; the weights equal an
uninterrupted n + m run of the numpy reference (slow weights and counter included, so a resume
mid-period must be exact too). For inject and for LookaheadOptimizer, with the mechanism users
reach for on each stack; and BackupAndRestore after a real kill of a training process."""
import os
import signal
import subprocess

import numpy as np
import pytest

import keras_lookahead
import workers
from reference import MLPReference
from helpers import assert_weights, batch, max_gap

pytestmark = pytest.mark.any_compile

K, ALPHA = 3, 0.5


def _model(stack, w0, api):
    """A compiled model with Lookahead (inject or wrapper), SGD with momentum: the inner state
    must come back too."""
    if api == "wrapper":
        stack.skip_without_wrapper()
        return stack.compile(stack.mlp(w0), keras_lookahead.LookaheadOptimizer(
            stack.sgd(0.1, momentum=0.9), k=K, alpha=ALPHA))
    model = stack.compile(stack.mlp(w0), stack.sgd(0.1, momentum=0.9))
    keras_lookahead.Lookahead(k=K, alpha=ALPHA).inject(model)
    return model


def _reference(w0, x, y, steps):
    """The uninterrupted run: ``steps`` batches of 4, in order."""
    ref = MLPReference(w0, lr=0.1, momentum=0.9)
    ref.attach(K, ALPHA)
    for i in range(steps):
        ref.step(*batch(x, y, i))
    return ref


def _train(model, x, y, steps, first=0):
    for i in range(first, first + steps):
        model.train_on_batch(*batch(x, y, i))


def _mechanisms(stack):
    """What saves a model's training state on this stack, as (save, load) on a path prefix."""
    def model_checkpoint(suffix):
        def save(model, prefix):
            # what fit does with it at the end of an epoch
            callback = stack.keras.callbacks.ModelCheckpoint(prefix + suffix,
                                                             save_weights_only=True)
            callback.set_model(model)
            callback.on_epoch_end(0, {})
        return save, lambda m, p: m.load_weights(p + suffix)

    if stack.family == "keras3":
        return {"save_weights": (lambda m, p: m.save_weights(p + ".weights.h5"),
                                 lambda m, p: m.load_weights(p + ".weights.h5")),
                "keras_file": (lambda m, p: m.save(p + ".keras"),
                               lambda m, p: m.load_weights(p + ".keras")),
                "ModelCheckpoint": model_checkpoint(".weights.h5")}
    if stack.family == "standalone":
        return {}
    tf = stack.tf
    found = {"save_weights": (lambda m, p: m.save_weights(p), lambda m, p: m.load_weights(p)),
             "ModelCheckpoint": model_checkpoint("")}
    if stack.eager:
        def checkpoint(model):
            return tf.train.Checkpoint(model=model)

        def restore(model, prefix):
            kept = checkpoint(model)  # the status refers to it weakly (TF 1.14)
            status = kept.restore(tf.train.latest_checkpoint(os.path.dirname(prefix)))
            status.assert_existing_objects_matched()

        found["tf.train.Checkpoint"] = (lambda m, p: checkpoint(m).save(p), restore)
    return found


#: where a run is saved: right after a sync (6, k = 3) and one step into a period (7); one run is
#: saved at both, and each save resumed in a model of its own
SAVED_AT = (6, 7)


def _through_saved_at(model, x, y):
    """Train ``model`` from step 0 to each point of SAVED_AT in turn, yielding the point."""
    done = 0
    for n in SAVED_AT:
        _train(model, x, y, n - done, first=done)
        done = n
        yield n


@pytest.mark.core
@pytest.mark.parametrize("api", ["inject", "wrapper"])
def test_resume_is_exact(stack, data, tmp_path, api):
    """One run, saved by every mechanism this stack has after n = 6 steps (right after a sync)
    and n = 7 (one step into a period); each save resumed in a model of its own, to 15 steps,
    as if never stopped."""
    found = _mechanisms(stack)
    if not found:
        pytest.skip("no checkpoint carries a model's training state on this stack ({}); "
                    "get_state / set_state: test_state_round_trip".format(stack.label))
    x, y, w0 = data
    model = _model(stack, w0, api)

    def prefix(n, mechanism):
        return os.path.join(str(tmp_path), str(n), mechanism, "ckpt")

    for n in _through_saved_at(model, x, y):
        for mechanism, (save, _) in found.items():
            os.makedirs(os.path.dirname(prefix(n, mechanism)))
            save(model, prefix(n, mechanism))
    uninterrupted = _reference(w0, x, y, 15).w
    for n in SAVED_AT:
        for mechanism, (_, load) in found.items():
            stack.fresh()
            again = _model(stack, w0, api)
            if api == "wrapper" and stack.family == "keras3":
                again.optimizer.build(again.trainable_variables)  # Keras 3 loads into built ones
            load(again, prefix(n, mechanism))
            _train(again, x, y, 15 - n, first=n)
            try:
                assert_weights(again, uninterrupted)
            except AssertionError as failure:
                raise AssertionError("{} after {} steps: {}".format(mechanism, n, failure))
    # and not what a resume that restarted Lookahead would give (n = 7; at 6 the two coincide)
    n = next(n for n in SAVED_AT if n % K)
    restarted = _reference(w0, x, y, n)
    restarted.attach(K, ALPHA)
    for i in range(n, 15):
        restarted.step(*batch(x, y, i))
    assert max_gap(uninterrupted, restarted.w) > 1e-4


@pytest.mark.core
def test_state_round_trip(stack, data):
    """get_state / set_state, the way to carry inject's state where no checkpoint does
    (standalone Keras, HDF5 files): with plain SGD, the fast weights and Lookahead's state are
    all there is, so a new model given both continues exactly (taken at each of SAVED_AT)."""
    x, y, w0 = data

    def model():
        m = stack.compile(stack.mlp(w0), stack.sgd(0.1))
        keras_lookahead.Lookahead(k=K, alpha=ALPHA).inject(m)
        return m

    first = model()
    taken = {}
    for n in _through_saved_at(first, x, y):
        taken[n] = first.get_weights(), keras_lookahead.get_state(first)
        assert int(taken[n][1][0]) == n and len(taken[n][1]) == 1 + len(w0)
    ref = MLPReference(w0, lr=0.1)
    ref.attach(K, ALPHA)
    for i in range(15):
        ref.step(*batch(x, y, i))
    for n, (fast, state) in taken.items():
        stack.fresh()
        again = model()
        with pytest.raises(ValueError, match=r"`arrays` must be what get_state returned "
                                             r".*Received: 4 arrays"):
            keras_lookahead.set_state(again, state[1:])
        again.set_weights(fast)
        keras_lookahead.set_state(again, state)
        _train(again, x, y, 15 - n, first=n)
        assert_weights(again, ref.w)


def _backup_and_restore(stack):
    """Why BackupAndRestore cannot be tried here, or None."""
    if stack.family == "standalone":
        return "standalone Keras has no BackupAndRestore"
    if stack.family == "tf":
        if stack.tf_minor < (2, 3):
            return "BackupAndRestore arrived in TensorFlow 2.3"
    if stack.family == "keras3" and stack.keras_minor == (3, 0):
        return ("Keras 3.0's BackupAndRestore restores the weights but not the epoch: a resumed "
                "fit starts over from epoch 0")
    if not stack.eager:
        return ("the kill test runs in TensorFlow's default execution mode, as the worker "
                "process trains (this run: {})".format(stack.label))
    return None


@pytest.mark.once  # as test_distribute's workers
def test_backup_and_restore_after_kill(stack, data, tmp_path):
    """A training process is SIGKILLed mid-epoch (after 5 of 10 batches; the last backup is at
    the end of epoch 2, 4 steps in, mid-period for k = 3); a new process with the same
    BackupAndRestore resumes and finishes. Its weights equal the uninterrupted run. inject, then
    the wrapper, through one worker command run until both are done: killed in inject's run,
    resumed (inject finishes; killed in the wrapper's run), resumed (the wrapper finishes)."""
    reason = _backup_and_restore(stack)
    if reason:
        pytest.skip(reason)
    apis = ["inject"]
    if stack.no_wrapper():
        print("the wrapper is not tried: no LookaheadOptimizer on " + stack.no_wrapper())
    elif stack.family == "keras3" and stack.backend == "tensorflow" and \
            stack.keras_minor < (3, 3):
        # inject builds the optimizer when it attaches, and JAX's fit before on_train_begin
        print("the wrapper is not tried: Keras 3.1 - 3.2's BackupAndRestore loads the backup "
              "before the optimizer is built (3.3 builds it first), and TensorFlow's fit builds "
              "it later: no optimizer state is restored, a bare optimizer's neither")
    else:
        apis.append("wrapper")
    x, y, w0 = data
    path = str(tmp_path)
    env = workers.environment(stack)
    command = workers.command(stack, "resume_worker.py", workers.write_data(path, data),
                              os.path.join(path, "backup"), path, ",".join(apis),
                              "--kill-after", 5)
    for killed_in in apis:
        run = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=600)
        assert run.returncode == -signal.SIGKILL, (killed_in, run.stdout.decode()[-3000:])
        assert not os.path.exists(os.path.join(path, killed_in + ".npz"))
    run = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=600)
    assert run.returncode == 0, run.stdout.decode()[-3000:]
    expected = _reference(w0, x, y, 10).w
    for api in apis:
        out = np.load(os.path.join(path, api + ".npz"))
        # it resumed (epochs 3 - 5), not started over: a fresh run would also match the reference
        assert int(out["batches"]) == 6, api
        got = [out["arr_%d" % i] for i in range(4)]
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, atol=2e-5, rtol=0, err_msg=api)
