"""The optimiser and the Keras callbacks of one member's training, and the history file they keep.

Every epoch is appended to ``history.csv`` in the member's folder. An interrupted run resumes from
Keras's backup; the early-stopping and rate-halving rules read that log
(:func:`logged_progress`, :func:`logged_plateau`) so they go on counting where the interrupted
run stood instead of starting afresh.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

__all__ = ["PLATEAU_MIN_DELTA", "log_learning_rate", "logged_plateau", "logged_progress", "make_optimizer",
           "read_history", "resumable_early_stopping", "resumable_lr_plateau"]

PLATEAU_MIN_DELTA = 1e-4  # ReduceLROnPlateau's default: a smaller fall of the loss is no gain


def make_optimizer(schedule: str, peak_rate: float, steps_per_epoch: int, epochs: int, ema: bool):
    """Adam with either a constant rate (lowered by ReduceLROnPlateau) or warm-up + cosine decay."""
    import keras

    rate = peak_rate
    if schedule == "cosine":
        warmup = 3 * steps_per_epoch
        rate = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(1, epochs * steps_per_epoch - warmup),
            warmup_target=peak_rate, warmup_steps=warmup)
    # ema_momentum 0.99 averages over the last ~100 steps, about five epochs here.
    return keras.optimizers.Adam(rate, use_ema=ema, ema_momentum=0.99)


def log_learning_rate():
    """A callback putting the rate the last step used into the epoch's logs (a schedule's is not logged)."""
    import keras

    class LogLearningRate(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    return LogLearningRate()


def logged_progress(path: Path, key: str) -> tuple[float | None, int]:
    """The highest ``key`` in a CSV history log and how many epochs were logged after it;
    (None, 0) when there is no log or no epoch yet."""
    if not path.is_file():
        return None, 0
    with open(path, newline="") as handle:
        values = [float(row[key]) for row in csv.DictReader(handle)]
    if not values:
        return None, 0
    best = int(np.argmax(values))
    return values[best], len(values) - 1 - best


def resumable_early_stopping(patience: int, best: float | None, epochs_since_best: int):
    """EarlyStopping on validation accuracy that, on a resumed run, goes on counting from where the
    interrupted run stood instead of granting a fresh ``patience``."""
    import keras

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            self.best, self.wait = best, epochs_since_best

    return ResumableEarlyStopping(monitor="val_accuracy", mode="max", patience=patience)


def logged_plateau(path: Path) -> tuple[float | None, int]:
    """Where the rate-halving rule stood after the epochs of a CSV history log: the lowest validation
    loss and the epochs counted since it, a rate cut restarting the count (as ReduceLROnPlateau
    does). (None, 0) when there is no log or no epoch yet."""
    if not path.is_file():
        return None, 0
    with open(path, newline="") as handle:
        rows = [(float(row["val_loss"]), float(row["learning_rate"])) for row in csv.DictReader(handle)]
    best, wait = None, 0
    for index, (loss, rate) in enumerate(rows):
        if best is None or loss < best - PLATEAU_MIN_DELTA:
            best, wait = loss, 0
        else:
            wait += 1
        if index and rate < rows[index - 1][1]:  # the logged rate is the one after this epoch's cut
            wait = 0
    return best, wait


def resumable_lr_plateau(best: float | None, wait: int):
    """Halve the rate after 5 epochs without a validation-loss gain; a resumed run goes on counting
    from the interrupted run's state (:func:`logged_plateau`) instead of waiting 5 epochs afresh."""
    import keras

    class ResumableReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            self.best, self.wait = best, wait

    return ResumableReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=5, min_lr=1e-5,
                                      min_delta=PLATEAU_MIN_DELTA)


def read_history(path: Path) -> dict[str, list]:
    """Per-epoch history from the CSV log (which survives resumed runs), best epoch by val accuracy."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    history: dict[str, list] = {"epoch": [int(row["epoch"]) + 1 for row in rows]}
    for key in ("accuracy", "val_accuracy", "loss", "val_loss", "learning_rate"):
        history[key] = [float(row[key]) for row in rows if row.get(key, "NA") != "NA"]  # NA: not validated
    # None for a member trained without validation speakers (nothing to pick a best epoch with)
    history["best_epoch"] = (int(history["epoch"][int(np.argmax(history["val_accuracy"]))])
                             if history["val_accuracy"] else None)
    return history
