"""A training process for test_resume's kill test: fit the suite's MLP with BackupAndRestore and
Lookahead (inject, LookaheadOptimizer, or each in turn: ``inject,wrapper``). For each api whose
result is not written yet: train it (its backup in BACKUP_DIR/API); with --kill-after N, a run
that starts afresh (no backup of its own yet) kills itself (SIGKILL, no cleanup) once N batches
are done; a resumed run finishes and writes OUT_DIR/API.npz (the final weights and how many
batches it trained). So a command run again and again goes: killed, resumed and killed in the
next api, ..., all written.

    python resume_worker.py DATA.npz BACKUP_DIR OUT_DIR APIS [--legacy] [--kill-after N]

KLA_FAMILY=keras3 picks Keras 3 (on KERAS_BACKEND); otherwise tf.keras (tf_keras under
TF_USE_LEGACY_KERAS=1), in TensorFlow's default (eager) mode.
"""
import argparse
import os
import signal

import numpy as np

EPOCHS, BATCH = 5, 4


def main():
    parser = argparse.ArgumentParser()
    for name in ("data", "backup_dir", "out_dir", "apis"):
        parser.add_argument(name)
    parser.add_argument("--legacy", action="store_true")
    parser.add_argument("--kill-after", type=int, default=None)
    args = parser.parse_args()

    if os.environ.get("KLA_FAMILY") == "keras3":
        import keras
        backup = keras.callbacks.BackupAndRestore
        callback_base = keras.callbacks.Callback
    else:
        import tensorflow as tf
        keras = tf.keras
        backup = getattr(keras.callbacks, "BackupAndRestore", None) or \
            keras.callbacks.experimental.BackupAndRestore
        callback_base = keras.callbacks.Callback
    from workers import build_model, inject_if_asked

    for api in args.apis.split(","):
        out = os.path.join(args.out_dir, api + ".npz")
        if os.path.exists(out):
            continue  # done in an earlier run
        backup_dir = os.path.join(args.backup_dir, api)
        kill_after = None if os.path.exists(backup_dir) else args.kill_after
        model, x, y = build_model(keras, args.data, api, args.legacy)
        inject_if_asked(model, api)

        class Kill(callback_base):
            done = 0

            def on_train_batch_end(self, batch, logs=None):
                self.done += 1
                if kill_after is not None and self.done == kill_after:
                    os.kill(os.getpid(), signal.SIGKILL)

        kill = Kill()
        model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0,
                  callbacks=[backup(backup_dir), kill])
        np.savez(out, *model.get_weights(), batches=kill.done)


if __name__ == "__main__":
    main()
