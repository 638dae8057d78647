"""A training process for test_resume's kill test: fit the suite's MLP with BackupAndRestore and
Lookahead (inject or LookaheadOptimizer); with --kill-after N it kills itself (SIGKILL, no
cleanup) once N batches are done, otherwise it finishes and writes the final weights and how
many batches it trained.

    python resume_worker.py DATA.npz BACKUP_DIR OUT.npz {inject,wrapper} [--legacy] [--kill-after N]

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
    for name in ("data", "backup_dir", "out", "api"):
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
    model, x, y = build_model(keras, args.data, args.api, args.legacy)
    inject_if_asked(model, args.api)

    class Kill(callback_base):
        done = 0

        def on_train_batch_end(self, batch, logs=None):
            self.done += 1
            if args.kill_after is not None and self.done == args.kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

    kill = Kill()
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0,
              callbacks=[backup(args.backup_dir), kill])
    np.savez(args.out, *model.get_weights(), batches=kill.done)


if __name__ == "__main__":
    main()
