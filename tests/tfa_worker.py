"""The two processes of test_tfa_migration.py: a model trained and saved with TF Addons'
Lookahead, then loaded with keras_lookahead where TF Addons cannot be imported.

    python tfa_worker.py save DATA.npz DIR   # with TF Addons
    python tfa_worker.py load DATA.npz DIR   # without: TF Addons blocked, keras_lookahead loads

save: the suite's MLP, compiled with tfa.optimizers.Lookahead(legacy Adam(LR), sync_period=K,
slow_step_size=ALPHA), trains SAVED_AT batches (not a multiple of K: the save falls inside a
period), is saved as HDF5 (DIR/model.h5) and SavedModel (DIR/saved_model), and writes to
DIR/tfa.npz: its optimizer state (iterations, slow copies, Adam's m and v), then the weights
after MORE batches of each continuation: TF Addons' own, in the same process (``ref_h5``); TF
Addons' after loading its SavedModel (``ref_saved_model``: Keras compiles a fresh optimizer
there); bare Adam with the same Adam state and no Lookahead (``bare``).

load: ``tensorflow_addons`` is blocked (``sys.modules[name] = None``, as if uninstalled), then
``import keras_lookahead`` and tf.keras' ``load_model`` read each save (HDF5 also with
``custom_objects={"Addons>Lookahead": keras_lookahead.LookaheadOptimizer}``; the SavedModel also
followed by ``model.load_weights(DIR/saved_model/variables/variables)``), and
DIR/ours.npz gets, per load, the optimizer's class, its k and alpha, its state after loading,
and the weights after the same MORE batches.
"""
import os
import sys

import numpy as np

SAVED_AT, MORE, K, ALPHA, LR = 7, 6, 3, 0.5, 0.01


def train(model, data, start, count):
    """Batches ``start`` .. ``start + count - 1`` (the suite's batches of 4, in turn)."""
    from helpers import batch
    for i in range(start, start + count):
        model.train_on_batch(*batch(data["x"], data["y"], i))
    return model.get_weights()


def save(keras, data_file, out):
    import tensorflow_addons as tfa
    from workers import mlp
    legacy = getattr(keras.optimizers, "legacy", keras.optimizers)  # what TF Addons wraps
    model, data = mlp(keras, data_file)
    model.compile(tfa.optimizers.Lookahead(legacy.Adam(LR), sync_period=K, slow_step_size=ALPHA),
                  loss="mse")
    train(model, data, 0, SAVED_AT)
    model.save(os.path.join(out, "model.h5"))
    model.save(os.path.join(out, "saved_model"), save_format="tf")
    opt, weights = model.optimizer, model.trainable_weights
    found = {"iterations": np.asarray(opt.iterations.numpy()), "saved": model.get_weights()}
    for name, owner in (("slow", opt), ("m", opt._optimizer), ("v", opt._optimizer)):
        found[name] = [owner.get_slot(w, name).numpy() for w in weights]
    adam_state = [found["iterations"]] + found["m"] + found["v"]

    bare, _ = mlp(keras, data_file)
    bare.set_weights(found["saved"])
    bare.compile(legacy.Adam(LR), loss="mse")
    # make Adam's variables (zero gradients with zero moments move nothing), then its state
    bare.optimizer.apply_gradients([(w * 0, w) for w in bare.trainable_weights])
    bare.optimizer.set_weights(adam_state)
    found["bare"] = train(bare, data, SAVED_AT, MORE)

    found["ref_h5"] = train(model, data, SAVED_AT, MORE)
    theirs = keras.models.load_model(os.path.join(out, "saved_model"))
    assert type(theirs.optimizer) is tfa.optimizers.Lookahead, type(theirs.optimizer)
    found["ref_saved_model"] = train(theirs, data, SAVED_AT, MORE)
    write(os.path.join(out, "tfa.npz"), found)


def load(keras, data_file, out):
    sys.modules["tensorflow_addons"] = None  # as if uninstalled: importing it raises
    import keras_lookahead
    found = {}
    loads = (("h5", "model.h5", None), ("saved_model", "saved_model", None),
             ("h5_custom_objects", "model.h5",
              {"Addons>Lookahead": keras_lookahead.LookaheadOptimizer}),
             ("saved_model_restored", "saved_model", None))
    for label, name, custom_objects in loads:
        model = keras.models.load_model(os.path.join(out, name), custom_objects=custom_objects)
        if label == "saved_model_restored":  # the README's recipe for the optimizer's state
            model.load_weights(os.path.join(out, name, "variables", "variables")).expect_partial()
        opt = model.optimizer
        found[label + "/class"] = np.asarray(type(opt).__name__)
        found[label + "/inner"] = np.asarray(type(opt.inner_optimizer).__name__)
        found[label + "/k_alpha"] = np.asarray([opt.k, opt.alpha])
        found[label + "/iterations"] = np.asarray(opt.iterations.numpy())
        if opt._lookahead is not None:  # made by loading the HDF5 optimizer weights
            counter, *slow = keras_lookahead.get_state(model)
            found[label + "/counter"] = np.asarray(counter)
            found[label + "/slow"] = slow
            inner = opt.inner_optimizer
            for slot in ("m", "v"):
                found[label + "/" + slot] = [inner.get_slot(w, slot).numpy()
                                             for w in model.trainable_weights]
        found[label + "/loaded"] = model.get_weights()
        found[label + "/continued"] = train(model, np.load(data_file), SAVED_AT, MORE)
        found[label + "/counter_after"] = np.asarray(keras_lookahead.get_state(model)[0])
    imported = sorted(m for m in sys.modules
                      if m.split(".")[0] == "tensorflow_addons" and sys.modules[m] is not None)
    found["tfa_modules"] = np.asarray(",".join(imported))
    write(os.path.join(out, "ours.npz"), found)


def write(path, found):
    """``found`` as one npz: a list under ``name/0``, ``name/1``, ..."""
    flat = {}
    for name, value in found.items():
        if isinstance(value, list):
            flat.update(("{}/{}".format(name, i), v) for i, v in enumerate(value))
        else:
            flat[name] = value
    np.savez(path, **flat)


def main():
    mode, data_file, out = sys.argv[1:4]
    import tensorflow as tf
    {"save": save, "load": load}[mode](tf.keras, data_file, out)


if __name__ == "__main__":
    main()
