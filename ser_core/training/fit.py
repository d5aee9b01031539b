"""Training the members of a run and averaging them, resumable after an interruption.

Each member trains in its own folder (``<run-dir>`` for one member, ``<run-dir>/member<i>`` for
several) with ``best.keras``/``last.keras`` checkpoints, ``history.csv`` and Keras's backup; a
finished member leaves ``finished.json``, so a restarted run loads it instead of training it again.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from ser_core.data.dataset import WindowSet
from ser_core.inference import artifacts
from ser_core.inference.params import EMOTIONS, TRAINING_LABELS, FeatureParams
from ser_core.training.callbacks import (log_learning_rate, logged_plateau, logged_progress, make_optimizer,
                                         read_history, resumable_early_stopping, resumable_lr_plateau)
from ser_core.training.recipes import MemberRecipe
from ser_core.training.record import member_seeds

__all__ = ["configure_device", "history_report", "load_members", "member_dirs", "setup_logging",
           "train_members", "train_model"]

log = logging.getLogger("train")


def setup_logging(run_dir: Path) -> None:
    """Log to the terminal and to ``<run_dir>/train.log``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.StreamHandler(sys.stdout), logging.FileHandler(run_dir / "train.log")],
    )


def configure_device() -> str:
    """Use the GPU with mixed precision when TensorFlow sees one; otherwise the CPU."""
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    if gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
        return f"GPU ({len(gpus)}x, mixed precision)"
    return f"CPU ({os.cpu_count()} cores)"


def _n_outputs(args: argparse.Namespace) -> int:
    """Output classes while training: the six emotions, and the auxiliary ones when asked for."""
    return len(TRAINING_LABELS) if args.auxiliary_emotions else len(EMOTIONS)


def _load_member(path: Path):
    """A trained member as the shipped model uses it: its auxiliary outputs, if any, dropped."""
    from ser_core.training.models import without_auxiliary_outputs

    return without_auxiliary_outputs(artifacts.load_model(path), len(EMOTIONS))


def train_model(train: WindowSet, validation: WindowSet | None, params: FeatureParams, args: argparse.Namespace,
                run_dir: Path, member: MemberRecipe, seed: int):
    """Fit one model as ``member`` says, seeded with ``seed``, with best/last checkpoints and resumable backups.

    Without ``validation`` (a member trained on the validation speakers too) nothing is validated
    and only the last epoch's weights are saved. Returns ``(model, history, seconds)``."""
    import keras

    from ser_core.data.dataset import evaluation_dataset, training_dataset
    from ser_core.training.augment import PRESETS, make_augmenter
    from ser_core.training.models import LEARNING_RATES, build_model

    keras.utils.set_random_seed(seed)
    preset = PRESETS[member.augment]
    augment = None if preset is None else make_augmenter(params, preset)
    train_data, steps = training_dataset(train, args.batch_size, augment, seed, _n_outputs(args))
    validation_data = None if validation is None else evaluation_dataset(validation, 64, _n_outputs(args))

    arch = member.network(args.arch)
    model = build_model(arch, params.input_shape, _n_outputs(args))
    peak_rate = args.learning_rate or LEARNING_RATES[arch]
    model.compile(
        optimizer=make_optimizer(member.schedule, peak_rate, steps, args.epochs, member.ema),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    checkpoint = run_dir / "best.keras"
    history_csv = run_dir / "history.csv"
    # On a resumed run, only an epoch better than the interrupted run's best may replace best.keras.
    best_so_far, epochs_since_best = (logged_progress(history_csv, "val_accuracy") if validation is not None
                                      else (None, 0))
    # Order matters: the backup holds the raw weights; the EMA weights are swapped in after it, for
    # validation and the checkpoint, and swapped out again when the next epoch begins.
    callbacks = [keras.callbacks.BackupAndRestore(str(run_dir / "backup"))]
    if member.ema:
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    if validation is not None:
        callbacks.append(keras.callbacks.ModelCheckpoint(str(checkpoint), monitor="val_accuracy",
                                                         save_best_only=True, initial_value_threshold=best_so_far))
    if member.schedule == "plateau":
        callbacks += [
            resumable_lr_plateau(*logged_plateau(history_csv)),
            resumable_early_stopping(args.patience, best_so_far, epochs_since_best),
        ]
    callbacks += [log_learning_rate(), keras.callbacks.CSVLogger(str(history_csv), append=True)]
    log.info("%s as %s (seed %d): %d parameters, %d training windows (%d steps/epoch), %s", model.name, member,
             seed, model.count_params(), len(train.x), steps,
             f"{len(validation.x)} validation windows" if validation is not None else "validation speakers trained on")
    started = time.perf_counter()
    model.fit(train_data, steps_per_epoch=steps, epochs=args.epochs, validation_data=validation_data,
              callbacks=callbacks, verbose=args.verbose)
    seconds = time.perf_counter() - started
    log.info("training took %.0f s", seconds)
    # With --ema the weights in memory are now the moving average (Keras assigns it at the end of fit).
    artifacts.save_model(model, run_dir / "last.keras")
    return _load_member(run_dir / f"{member.keep}.keras"), read_history(history_csv), seconds


def member_dirs(run_dir: Path, n_members: int) -> list[Path]:
    """Each member's folder: ``run_dir`` itself for a single model."""
    return [run_dir] if n_members == 1 else [run_dir / f"member{index}" for index in range(n_members)]


def _prepare_member_dir(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "backup").exists():  # not resuming: start the history anew
        (directory / "history.csv").unlink(missing_ok=True)


def train_members(train: WindowSet, validation: WindowSet, params: FeatureParams, args: argparse.Namespace,
                  run_dir: Path, train_and_validation: WindowSet | None = None, *, reuse_finished: bool = False):
    """Train every ``args.members`` recipe and average them into one model.

    An interrupted run resumes: members that had finished are loaded, the interrupted one continues.
    When every member had finished, the run is new and trains them all again, unless
    ``reuse_finished`` (a cross-validation's finished fold, when the cross-validation was interrupted).

    Parameters
    ----------
    train, validation : WindowSet
        Windows of the training and validation speakers.
    params : FeatureParams
        The features' parameters (input shape, augmentation).
    args : argparse.Namespace
        train.py's options: ``members``, ``seed``, ``member_seed``, ``arch``, ``epochs``,
        ``batch_size``, ``learning_rate``, ``patience``, ``auxiliary_emotions``, ``verbose``.
    run_dir : Path
        The members' folders go here (see :func:`member_dirs`).
    train_and_validation : WindowSet, optional
        Both speaker sets (``--pool-validation``): members that need no validation speakers train on it.
    reuse_finished : bool
        Load members that finished with this recipe even when all of them did.

    Returns
    -------
    tuple
        ``(model, histories, seconds)``: the average of the members' logits as one Keras model, each
        member's history (``{"member": spec, "epoch": [...], ...}``) and the training seconds in all.
    """
    from ser_core.training.models import ensemble

    directories = member_dirs(run_dir, len(args.members))
    finished = [_finished_as(directory, member) for directory, member in zip(directories, args.members)]
    resuming = (reuse_finished or any((directory / "backup").exists() for directory in directories)
                or (any(finished) and not all(finished)))
    models, histories, total_seconds = [], [], 0.0
    seeds = member_seeds(args.members, args.seed, args.member_seed)
    for member, seed, directory, done in zip(args.members, seeds, directories, finished):
        if resuming and done:
            log.info("member %s: already trained in %s", member, directory)
            model = _load_member(directory / f"{member.keep}.keras")
            history = read_history(directory / "history.csv")
            seconds = json.loads((directory / "finished.json").read_text())["seconds"]
        else:
            (directory / "finished.json").unlink(missing_ok=True)
            _prepare_member_dir(directory)
            pooled = train_and_validation is not None and not member.needs_validation
            model, history, seconds = train_model(train_and_validation if pooled else train,
                                                  None if pooled else validation, params, args, directory, member,
                                                  seed)
            artifacts.write_json(directory / "finished.json", {"member": str(member), "seconds": round(seconds, 1)})
        models.append(model)
        histories.append({"member": str(member), **history})
        total_seconds += seconds
    return ensemble(models), histories, total_seconds


def _finished_as(directory: Path, member: MemberRecipe) -> bool:
    """Whether ``directory`` holds a finished training of this very member recipe."""
    try:
        return json.loads((directory / "finished.json").read_text())["member"] == str(member)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def load_members(run_dir: Path, members: list[MemberRecipe], checkpoint: str | None = None):
    """A finished run's members, averaged: each with the weights its recipe keeps, or all with
    ``checkpoint`` ("best" or "last") when given."""
    from ser_core.training.models import ensemble

    return ensemble([_load_member(directory / f"{checkpoint or member.keep}.keras")
                     for member, directory in zip(members, member_dirs(run_dir, len(members)))])


def history_report(histories: list[dict]) -> dict:
    """history.json: one model's history as before; an ensemble's as {"members": [...]}."""
    return histories[0] if len(histories) == 1 else {"members": histories}
