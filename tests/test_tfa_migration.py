"""Coming from TF Addons (README): a model saved with ``tfa.optimizers.Lookahead`` loads with
tf.keras' ``load_model`` after ``import keras_lookahead``, in a process where TF Addons cannot
be imported, as our ``LookaheadOptimizer`` (the ``OptimizerV2`` one, the family TF Addons
wraps); from HDF5, or from a SavedModel and then its checkpoint (``model.load_weights``), with TF
Addons' whole state (step count, slow copies, the inner Adam's moments), so that training goes
on as TF Addons' own does, from a save inside a period. Two
processes (tests/tfa_worker.py): one with TF Addons trains, saves and continues; one without it
loads and continues the same batches.

TF Addons is installed in the tox envs of tf.keras 2.9 - 2.15 only, which set
KLA_PEER=tensorflow_addons (as for test_peers.py): there a TF Addons that fails to import fails
the test instead of skipping it."""
import os
import subprocess

import numpy as np
import pytest

import keras_lookahead
import workers
from helpers import max_gap
from tfa_worker import ALPHA, K, MORE, SAVED_AT

pytestmark = [pytest.mark.once,
              pytest.mark.requires("wrapper", "tf_keras_family", "eager",
                                   reason="TF Addons' Lookahead is a tf.keras 2.x optimizer, "
                                          "saved and trained eagerly")]

# ours syncs as (1 - alpha) * slow + alpha * fast, TF Addons as slow + alpha * (fast - slow):
# the same up to rounding
ATOL = 1e-5
# what a lost piece of state moves the weights by, at least (measured: 3e-3 and more)
APART = 1e-3


def _run(stack, *arguments):
    run = subprocess.run(workers.command(stack, "tfa_worker.py", *arguments),
                         env=workers.environment(stack), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=600)
    assert run.returncode == 0, "tfa_worker.py {} failed:\n{}".format(
        arguments[0], run.stdout.decode(errors="replace")[-6000:])


def _read(path):
    """What tfa_worker.write saved, with its lists (``name/0``, ``name/1``, ...) back."""
    found = {}
    with np.load(path) as saved:
        for key in saved.files:
            head, _, tail = key.rpartition("/")
            if tail.isdigit():
                found.setdefault(head, []).append((int(tail), saved[key]))
            else:
                found[key] = saved[key]
    return {k: [a for _, a in sorted(v)] if isinstance(v, list) else v for k, v in found.items()}


def _assert_equal(got, expected, what):
    assert len(got) == len(expected), what
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e, err_msg=what)


def test_model_saved_with_tf_addons_loads_and_resumes(stack, data, tmp_path):
    if os.environ.get("KLA_PEER") != "tensorflow_addons":
        pytest.skip("TF Addons is installed only in the tox envs of tf.keras 2.9 - 2.15, "
                    "which set KLA_PEER=tensorflow_addons (here: KLA_PEER={})".format(
                        os.environ.get("KLA_PEER")))
    out = str(tmp_path)
    data_file = workers.write_data(out, data)
    _run(stack, "save", data_file, out)
    _run(stack, "load", data_file, out)
    theirs, ours = _read(os.path.join(out, "tfa.npz")), _read(os.path.join(out, "ours.npz"))
    assert str(ours["tfa_modules"]) == "", "the loading process imported TF Addons"
    legacy = getattr(stack.keras.optimizers, "legacy", stack.keras.optimizers)
    expected_class = type(keras_lookahead.LookaheadOptimizer(legacy.SGD())).__name__
    assert SAVED_AT % K != 0  # saved inside a period

    # a lost piece of state would show: TF Addons' continuation is far from bare Adam's (same
    # Adam state, no Lookahead) and from one with a fresh optimizer (its SavedModel's)
    apart = {"bare Adam": max_gap(theirs["ref_h5"], theirs["bare"]),
             "fresh optimizer": max_gap(theirs["ref_h5"], theirs["ref_saved_model"])}
    assert min(apart.values()) > APART, apart
    print("TF Addons' continuation from HDF5 vs other continuations:", apart)

    gaps = {}
    for label in ("h5", "h5_custom_objects"):
        assert str(ours[label + "/class"]) == expected_class
        assert str(ours[label + "/inner"]) == "Adam"
        assert tuple(ours[label + "/k_alpha"]) == (K, ALPHA)
        _assert_equal(ours[label + "/loaded"], theirs["saved"], label + ": weights")
        # TF Addons' step count is the inner optimizer's iterations and our counter
        assert int(ours[label + "/iterations"]) == int(theirs["iterations"]) == SAVED_AT
        assert int(ours[label + "/counter"]) == SAVED_AT
        for name in ("slow", "m", "v"):
            _assert_equal(ours[label + "/" + name], theirs[name], label + ": " + name)
        gaps[label] = max_gap(ours[label + "/continued"], theirs["ref_h5"])
        assert gaps[label] <= ATOL, (label, gaps[label])

    # the SavedModel, then its checkpoint (load_weights of its variables/variables): TF Addons'
    # names are read, its step count is the inner iterations and our counter
    assert str(ours["saved_model_restored/class"]) == expected_class
    assert int(ours["saved_model_restored/iterations"]) == SAVED_AT
    _assert_equal(ours["saved_model_restored/loaded"], theirs["saved"], "restored: weights")
    gaps["saved_model_restored"] = max_gap(ours["saved_model_restored/continued"],
                                           theirs["ref_h5"])
    assert gaps["saved_model_restored"] <= ATOL, gaps["saved_model_restored"]
    for label in ("h5", "h5_custom_objects", "saved_model_restored"):
        assert int(ours[label + "/counter_after"]) == SAVED_AT + MORE

    # SavedModel alone: Keras compiles a fresh optimizer from the saved config for every
    # OptimizerV2 (its warning: "Slots cannot be restored from saved_model"), TF Addons' own as
    # well: ours continues as TF Addons' does after loading it
    assert str(ours["saved_model/class"]) == expected_class
    assert tuple(ours["saved_model/k_alpha"]) == (K, ALPHA)
    assert int(ours["saved_model/iterations"]) == 0
    assert int(ours["saved_model/counter_after"]) == MORE
    _assert_equal(ours["saved_model/loaded"], theirs["saved"], "saved_model: weights")
    gaps["saved_model"] = max_gap(ours["saved_model/continued"], theirs["ref_saved_model"])
    assert gaps["saved_model"] <= ATOL, gaps["saved_model"]
    print("max abs difference from TF Addons' continuation after {} steps: {}".format(
        MORE, gaps))
