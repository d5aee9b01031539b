"""Train the speech emotion model and write everything the app needs into artifacts/.

    python train.py                                     # download RAVDESS + CREMA-D with kagglehub
    python train.py --ravdess-dir ../shared/data/ravdess  # local copies (either or both)
    python train.py --ravdess-dir ../shared/data/ravdess --cv 5   # speaker-independent cross-validation

Reads top to bottom: data -> speaker split -> features (cached) -> train -> calibrate -> evaluate -> artifacts.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from ser_core.inference import artifacts
from ser_core.training.augment import PRESETS
from ser_core.data.arguments import add_corpus_arguments, clips_from_arguments
from ser_core.data.corpora import Clip, DataUnavailableError, class_counts
from ser_core.data.dataset import DEFAULT_CACHE_DIR, WindowSet, extract_features, window_set
from ser_core.evaluation.metrics import (classification_report, clip_probabilities, ece_sampling_floor, fit_temperature,
                                 reliability)
from ser_core.training.models import DEFAULT_ARCH, LEARNING_RATES, ARCHITECTURES
from ser_core.inference.params import AUXILIARY_EMOTIONS, EMOTIONS, TRAINING_LABELS, FeatureParams
from ser_core.evaluation.member_specs import CHECKPOINTS, ensemble_label
from ser_core.training.recipes import DEFAULT_EPOCHS, DEFAULT_MEMBERS, MemberRecipe, ensemble_arch
from ser_core.data.split import cross_validation_folds, fold_assignment, speaker_split, write_split_csv

log = logging.getLogger("train")


def member_spec(text: str) -> MemberRecipe:
    try:
        return MemberRecipe.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def test_fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 0.5:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 0.5 (0.15 holds out 3 of 20 speakers)")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_arguments(parser)  # --data NAME[=DIR] ..., --ravdess-dir, --crema-dir, --calm-as
    parser.add_argument("--arch", default=DEFAULT_ARCH, choices=sorted(ARCHITECTURES))
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, help="default: per architecture")
    parser.add_argument("--patience", type=int, default=20,
                        help="plateau schedule: epochs without validation gain before stopping")
    parser.add_argument("--members", nargs="+", type=member_spec, default=[MemberRecipe.parse(m) for m in DEFAULT_MEMBERS],
                        metavar="[ARCH/]SCHEDULE[+ema]:PRESET[@KEEP]",
                        help=f"one model per spec, averaged (default: {' '.join(DEFAULT_MEMBERS)}). ARCH: this "
                             "member's network instead of --arch. SCHEDULE plateau: halve the "
                             "rate when validation loss stalls, stop early; cosine: warm up, decay to zero over "
                             "--epochs. +ema: validate and keep the weights' moving average. PRESET: augmentation, one of "
                             + ", ".join(sorted(PRESETS)) + ". KEEP: best (the epoch with the best validation "
                             "accuracy; plateau's default) or last (the last epoch's weights; cosine's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--member-seed", type=int, metavar="SEED",
                        help="seed of the first member's training (default: --seed; folds and splits keep --seed), "
                             "so one copy of a repeated recipe can be cross-validated on its own with the seed it "
                             "gets in the ensemble")
    parser.add_argument("--n-mels", type=int, default=FeatureParams.n_mels, help="mel bands")
    parser.add_argument("--top-db", type=float, default=FeatureParams.top_db,
                        help="dynamic range kept below each window's loudest bin")
    parser.add_argument("--test-fraction", type=test_fraction, default=0.15,
                        help="share of speakers held out for testing; 0 trains on every speaker but the "
                             "validation ones (the figures on unseen speakers then come from --cv)")
    parser.add_argument("--temperature-from", type=Path, metavar="CV_JSON",
                        help="calibrate with the temperature fitted on this cross-validation's out-of-fold test "
                             "clips (a cv_<arch>.json of the same recipe) instead of on the validation speakers")
    parser.add_argument("--pool-validation", action="store_true",
                        help="members that need no validation speakers (cosine schedule, last epoch kept) train "
                             "on them too; plateau and @best members still hold them out")
    parser.add_argument("--auxiliary-emotions", action=argparse.BooleanOptionalAction, default=False,
                        help="also train on RAVDESS's calm and surprised clips, as extra output classes that are "
                             "dropped from the saved model (it predicts the six emotions only)")
    parser.add_argument("--cv", type=int, metavar="K", help="run K-fold speaker-independent cross-validation instead")
    parser.add_argument("--folds", type=int, nargs="+", metavar="I", help="with --cv: only these folds (0-based)")
    parser.add_argument("--artifacts", type=Path, default=artifacts.ARTIFACTS_DIR, help="output folder")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="feature cache")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/latest"),
                        help="checkpoints and logs; an interrupted run resumes from here when started again")
    parser.add_argument("--fresh", action="store_true", help="ignore (delete) any interrupted run in --run-dir")
    parser.add_argument("--workers", type=int, help="feature-extraction processes (default: CPU count)")
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2), help="Keras progress output")
    args = parser.parse_args(argv)
    args.members = [member.on(args.arch) for member in args.members]  # "ARCH/" only where it differs
    if args.cv and args.temperature_from:
        parser.error("--temperature-from calibrates a model trained without --cv")
    return args


def setup_logging(run_dir: Path) -> None:
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


def load_windows(clips: list[Clip], params: FeatureParams, args) -> tuple[list[Clip], list[np.ndarray]]:
    """Features for every clip; unreadable clips are logged (with the reason) and dropped."""
    features, failures = extract_features(clips, params, args.cache_dir, args.workers)
    if failures:
        log.warning("%d unreadable clips skipped (listed above in this log)", len(failures))
    kept = [(clip, f) for clip, f in zip(clips, features) if f is not None]
    return [clip for clip, _ in kept], [f for _, f in kept]


def subset(clips: list[Clip], features: list[np.ndarray], assignment: dict[str, str],
           split: str | tuple[str, ...]) -> WindowSet:
    splits = (split,) if isinstance(split, str) else split
    chosen = [i for i, clip in enumerate(clips) if assignment.get(clip.speaker) in splits]
    return window_set([clips[i] for i in chosen], [features[i] for i in chosen])


Auxiliary = tuple[list[Clip], list[np.ndarray]]  # auxiliary-emotion clips and their features
NO_AUXILIARY: Auxiliary = ([], [])


def training_subset(clips: list[Clip], features: list[np.ndarray], auxiliary: Auxiliary,
                    assignment: dict[str, str], split: str | tuple[str, ...]) -> WindowSet:
    """``subset`` with the auxiliary-emotion clips of the same speakers added (training sets only)."""
    return subset(clips + auxiliary[0], features + auxiliary[1], assignment, split)


def recipe_arch(args) -> str:
    """The run's architecture as reports name it: ``--arch``, or e.g. ``ser_cnn_lite+ser_tdnn`` when
    members bring their own (``ser_core.training.recipes.ensemble_arch``)."""
    return ensemble_arch(args.members, args.arch)


def n_outputs(args) -> int:
    """Output classes while training: the six emotions, and the auxiliary ones when asked for."""
    return len(TRAINING_LABELS) if args.auxiliary_emotions else len(EMOTIONS)


def load_member(path: Path):
    """A trained member as the shipped model uses it: its auxiliary outputs, if any, dropped."""
    from ser_core.training.models import without_auxiliary_outputs

    return without_auxiliary_outputs(artifacts.load_model(path), len(EMOTIONS))


def train_model(train: WindowSet, validation: WindowSet | None, params: FeatureParams, args, run_dir: Path,
                member: MemberRecipe, seed: int):
    """Fit one model as ``member`` says, seeded with ``seed``, with best/last checkpoints and resumable backups.

    Without ``validation`` (a member trained on the validation speakers too) nothing is validated
    and only the last epoch's weights are saved."""
    import keras

    from ser_core.training.augment import make_augmenter
    from ser_core.data.dataset import evaluation_dataset, training_dataset
    from ser_core.training.models import build_model

    keras.utils.set_random_seed(seed)
    preset = PRESETS[member.augment]
    augment = None if preset is None else make_augmenter(params, preset)
    train_data, steps = training_dataset(train, args.batch_size, augment, seed, n_outputs(args))
    validation_data = None if validation is None else evaluation_dataset(validation, 64, n_outputs(args))

    arch = member.network(args.arch)
    model = build_model(arch, params.input_shape, n_outputs(args))
    peak_rate = args.learning_rate or LEARNING_RATES[arch]
    model.compile(
        optimizer=make_optimizer(member.schedule, peak_rate, steps, args.epochs, member.ema),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    checkpoint = run_dir / "best.keras"
    history_csv = run_dir / "history.csv"
    # On a resumed run, only an epoch better than the interrupted run's best may replace best.keras.
    best_so_far, epochs_since_best = logged_progress(history_csv, "val_accuracy") if validation is not None else (None, 0)
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
            _resumable_lr_plateau(*logged_plateau(history_csv)),
            _resumable_early_stopping(args.patience, best_so_far, epochs_since_best),
        ]
    callbacks += [_log_learning_rate_callback(), keras.callbacks.CSVLogger(str(history_csv), append=True)]
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
    return load_member(run_dir / f"{member.keep}.keras"), read_history(history_csv), seconds


def member_dirs(run_dir: Path, n_members: int) -> list[Path]:
    return [run_dir] if n_members == 1 else [run_dir / f"member{index}" for index in range(n_members)]


def member_seeds(args: argparse.Namespace) -> list[int]:
    """Each member's training seed: ``--member-seed`` (default ``--seed``), and a recipe repeated in
    ``--members`` gets the next seed each time, since the same seed would train the same model."""
    first = args.seed if args.member_seed is None else args.member_seed
    repeats: Counter[str] = Counter()
    seeds = []
    for member in args.members:
        seeds.append(first + repeats[str(member)])
        repeats[str(member)] += 1
    return seeds


def train_members(train: WindowSet, validation: WindowSet, params: FeatureParams, args, run_dir: Path,
                  train_and_validation: WindowSet | None = None):
    """Train every ``args.members`` recipe; returns (their average as one model, histories, seconds).

    With ``train_and_validation`` (``--pool-validation``), members that need no validation speakers
    train on those too. An interrupted run resumes: members that had finished are loaded, the
    interrupted one continues.
    """
    from ser_core.training.models import ensemble

    directories = member_dirs(run_dir, len(args.members))
    finished = [(directory / "finished.json").exists() for directory in directories]
    resuming = any((directory / "backup").exists() for directory in directories) or (any(finished) and not all(finished))
    models, histories, total_seconds = [], [], 0.0
    for member, seed, directory, done in zip(args.members, member_seeds(args), directories, finished):
        if resuming and done:
            log.info("member %s: already trained in %s", member, directory)
            model = load_member(directory / f"{member.keep}.keras")
            history = read_history(directory / "history.csv")
            seconds = json.loads((directory / "finished.json").read_text())["seconds"]
        else:
            (directory / "finished.json").unlink(missing_ok=True)
            prepare_run_dir(directory)
            pooled = train_and_validation is not None and not member.needs_validation
            model, history, seconds = train_model(train_and_validation if pooled else train,
                                                  None if pooled else validation, params, args, directory, member,
                                                  seed)
            artifacts.write_json(directory / "finished.json", {"member": str(member), "seconds": round(seconds, 1)})
        models.append(model)
        histories.append({"member": str(member), **history})
        total_seconds += seconds
    return ensemble(models), histories, total_seconds


def pooled_training_set(clips: list[Clip], features: list[np.ndarray], auxiliary: Auxiliary,
                        assignment: dict[str, str], args) -> WindowSet | None:
    """Training and validation speakers together, for ``--pool-validation``'s members; else None."""
    if not args.pool_validation:
        return None
    return training_subset(clips, features, auxiliary, assignment, ("train", "validation"))


def load_members(run_dir: Path, members: list[MemberRecipe], checkpoint: str | None = None):
    """A finished run's members, averaged: each with the weights its recipe keeps, or all with
    ``checkpoint`` ("best" or "last") when given."""
    from ser_core.training.models import ensemble

    return ensemble([load_member(directory / f"{checkpoint or member.keep}.keras")
                     for member, directory in zip(members, member_dirs(run_dir, len(members)))])


def history_report(histories: list[dict]) -> dict:
    """history.json: one model's history as before; an ensemble's as {"members": [...]}."""
    return histories[0] if len(histories) == 1 else {"members": histories}


def _log_learning_rate_callback():
    import keras

    class LogLearningRate(keras.callbacks.Callback):
        """Put the rate the last step used into the epoch's logs (a schedule's rate is not logged)."""

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    return LogLearningRate()


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


def _resumable_early_stopping(patience: int, best: float | None, epochs_since_best: int):
    """EarlyStopping on validation accuracy that, on a resumed run, goes on counting from where the
    interrupted run stood instead of granting a fresh ``patience``."""
    import keras

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            self.best, self.wait = best, epochs_since_best

    return ResumableEarlyStopping(monitor="val_accuracy", mode="max", patience=patience)


PLATEAU_MIN_DELTA = 1e-4  # ReduceLROnPlateau's default: a smaller fall of the loss is no gain


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


def _resumable_lr_plateau(best: float | None, wait: int):
    """Halve the rate after 5 epochs without a validation-loss gain; a resumed run goes on counting
    from the interrupted run's state (``logged_plateau``) instead of waiting 5 epochs afresh."""
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


def window_logits(model, windows: WindowSet) -> np.ndarray:
    return np.asarray(model.predict(windows.x[..., None], batch_size=128, verbose=0), dtype=np.float64)


def score(logits: np.ndarray, windows: WindowSet, temperature: float) -> dict:
    """Clip-level classification report of ``windows`` from their window logits."""
    probabilities = clip_probabilities(logits, windows.clip_index, temperature)
    return classification_report(windows.clip_labels, probabilities.argmax(axis=1))


def calibration_report(logits: np.ndarray, windows: WindowSet, temperature: float) -> dict:
    """Expected calibration error and reliability bins of ``windows``, unscaled and scaled, with the
    ECE a perfectly calibrated model would show on this many clips (see ``ece_sampling_floor``)."""
    return calibration_of(clip_probabilities(logits, windows.clip_index),
                          clip_probabilities(logits, windows.clip_index, temperature), windows.clip_labels)


def calibration_of(unscaled: np.ndarray, scaled: np.ndarray, labels: np.ndarray) -> dict:
    """:func:`calibration_report` from clip probabilities without and with the temperature."""
    before, after = reliability(unscaled, labels), reliability(scaled, labels)
    return {"ece_before": before["ece"], "ece_after": after["ece"], "ece_floor": ece_sampling_floor(scaled.max(axis=1)),
            "reliability": {"before": before, "after": after}}


def prepare_run_dir(run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "backup").exists():  # not resuming: start the history anew
        (run_dir / "history.csv").unlink(missing_ok=True)


def split_summary(clips: list[Clip], assignment: dict[str, str]) -> dict:
    summary = {}
    for split in ("train", "validation", "test"):
        members = [clip for clip in clips if assignment[clip.speaker] == split]
        summary[split] = {"clips": len(members), "speakers": sorted({c.speaker for c in members}),
                          "class_counts": class_counts(members)}
    return summary


def cross_validated_temperature(path: Path, args, params: FeatureParams) -> dict:
    """The temperature a cross-validation of this very recipe fitted on its out-of-fold test clips.

    ValueError, saying what differs, when the file is missing or describes another recipe.
    """
    try:
        report = json.loads(Path(path).read_text())
        recorded = [str(MemberRecipe.parse(spec)) for spec in report["members"]]
        pooled = report["summary"]["pooled_calibration"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a readable cross-validation report ({error})") from None
    wanted = {"arch": recipe_arch(args), "members": [str(m) for m in args.members], "feature_params": params.to_dict(),
              "epochs": args.epochs, "pool_validation": args.pool_validation,
              "auxiliary_emotions": auxiliary_emotions(args)}
    absent = {"pool_validation": False, "auxiliary_emotions": []}  # reports older than these options
    differing = [key for key, value in wanted.items()
                 if (recorded if key == "members" else report.get(key, absent.get(key))) != value]
    if differing:
        raise ValueError(f"{path} cross-validated another recipe ({', '.join(differing)} differ): "
                         f"run train.py --cv 5 with the same options first")
    if "cv_temperature" not in pooled:
        raise ValueError(f"{path} has no temperature fitted on out-of-fold clips (a complete --cv run writes one)")
    return {"temperature": float(pooled["cv_temperature"]), "clips": int(pooled["clips"]),
            "speakers": report.get("speakers")}


def auxiliary_emotions(args) -> list[str]:
    """The auxiliary emotions trained on, as the reports record them."""
    return list(AUXILIARY_EMOTIONS) if args.auxiliary_emotions else []


def run_single(args, clips: list[Clip], features: list[np.ndarray], params: FeatureParams, data_info: dict,
               cv_calibration: dict | None = None, auxiliary: Auxiliary = NO_AUXILIARY) -> None:
    assignment = speaker_split(clips, seed=args.seed, test=args.test_fraction)
    train = training_subset(clips, features, auxiliary, assignment, "train")
    validation = subset(clips, features, assignment, "validation")
    test = subset(clips, features, assignment, "test") if "test" in assignment.values() else None
    model, histories, seconds = train_members(train, validation, params, args, args.run_dir,
                                              pooled_training_set(clips, features, auxiliary, assignment, args))
    validation_logits = window_logits(model, validation)
    if cv_calibration:
        temperature = cv_calibration["temperature"]
        fitted_on = (f"cross-validation's out-of-fold test clips ({cv_calibration['clips']} clips of "
                     f"{cv_calibration['speakers']} speakers, each scored by a model that never heard its speaker)")
    else:
        temperature, fitted_on = fit_temperature(validation_logits, validation.labels), "validation speakers"
    validation_report = score(validation_logits, validation, temperature)
    on_validation = calibration_report(validation_logits, validation, temperature)
    metrics = {"validation": validation_report}
    if test is not None:
        test_logits = window_logits(model, test)
        metrics["test"] = score(test_logits, test, temperature)
        metrics["calibration"] = {
            "temperature": temperature, "fitted_on": fitted_on, "measured_on": "test speakers",
            **calibration_report(test_logits, test, temperature),
            "validation": {"ece_before": on_validation["ece_before"], "ece_after": on_validation["ece_after"]}}
        log.info("test speakers: accuracy %.3f, UAR %.3f, macro-F1 %.3f (n=%d); temperature %.2f",
                 metrics["test"]["accuracy"], metrics["test"]["uar"], metrics["test"]["macro_f1"],
                 metrics["test"]["n"], temperature)
    else:  # no test speakers: with the validation temperature this ECE is optimistic (its own data)
        metrics["calibration"] = {"temperature": temperature, "fitted_on": fitted_on,
                                  "measured_on": "validation speakers", **on_validation}
        log.info("no test speakers; validation accuracy %.3f, UAR %.3f (n=%d); temperature %.2f",
                 validation_report["accuracy"], validation_report["uar"], validation_report["n"], temperature)
    metrics["split"] = split_summary(clips, assignment)

    out = args.artifacts
    out.mkdir(parents=True, exist_ok=True)
    corpora = ", ".join(sorted({c.corpus for c in clips}))
    config = {
        "model_name": f"{ensemble_label([str(m) for m in args.members], recipe_arch(args))} ({corpora})",
        "arch": recipe_arch(args),
        "parameters": int(model.count_params()),
        "emotions": list(EMOTIONS),
        "feature_params": params.to_dict(),
        "temperature": temperature,
        "threshold": 0.55,
        "trained_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "training_seconds": round(seconds, 1),
        "seed": args.seed,
        "recipe": {"members": [str(m) for m in args.members], "member_seeds": member_seeds(args),
                   "epochs": args.epochs, "pool_validation": args.pool_validation,
                   "auxiliary_emotions": auxiliary_emotions(args),
                   "batch_size": args.batch_size, "test_fraction": args.test_fraction},
        "data": data_info,
    }
    artifacts.save_model(model, out / artifacts.MODEL_FILE)
    artifacts.write_json(out / artifacts.CONFIG_FILE, config)
    artifacts.write_json(out / artifacts.METRICS_FILE, metrics)
    artifacts.write_json(out / artifacts.HISTORY_FILE, history_report(histories))
    split_csv = args.run_dir / "split.csv"
    write_split_csv(clips, assignment, split_csv)
    artifacts.write_text(out / artifacts.SPLIT_FILE, split_csv.read_text())
    log.info("artifacts written to %s", out)


CONDITIONS = ("snr_20db", "snr_10db", "snr_5db", "reverb_rt60_0.6s")


def corrupted_logits(model, clips: list[Clip], params: FeatureParams, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """``{condition: {"clip_index", "logits"}}`` of ``clips`` with white noise at 20/10/5 dB SNR and
    reverberated, features recomputed from the corrupted waveform (which may change the window count)."""
    from ser_core.inference.audio import load_audio
    from ser_core.data.corrupt import add_noise, reverberate
    from ser_core.inference.features import clip_features

    corruptions = {
        "snr_20db": lambda w, rng: add_noise(w, 20, rng),
        "snr_10db": lambda w, rng: add_noise(w, 10, rng),
        "snr_5db": lambda w, rng: add_noise(w, 5, rng),
        "reverb_rt60_0.6s": lambda w, rng: reverberate(w, 0.6, params.sample_rate, rng),
    }
    waves = [load_audio(clip.path, params.sample_rate) for clip in clips]
    results = {}
    for name in CONDITIONS:
        rng = np.random.default_rng(seed)
        corrupted = window_set(clips, [clip_features(corruptions[name](wave, rng), params)[0] for wave in waves])
        results[name] = {"clip_index": corrupted.clip_index, "logits": window_logits(model, corrupted)}
    return results


def run_cross_validation(args, clips: list[Clip], features: list[np.ndarray], params: FeatureParams,
                         auxiliary: Auxiliary = NO_AUXILIARY) -> None:
    folds = cross_validation_folds(clips, args.cv, seed=args.seed)
    chosen = args.folds if args.folds is not None else range(args.cv)
    results, fold_parts = [], []
    for index in chosen:
        assignment = fold_assignment(clips, folds[index], seed=args.seed)
        train = training_subset(clips, features, auxiliary, assignment, "train")
        validation, test = (subset(clips, features, assignment, s) for s in ("validation", "test"))
        log.info("fold %d: test speakers %s, validation speakers %s", index, folds[index],
                 sorted({c.speaker for c in validation.clips}))
        run_dir = args.run_dir / f"fold{index}"
        model, histories, seconds = train_members(train, validation, params, args, run_dir,
                                                  pooled_training_set(clips, features, auxiliary, assignment, args))
        result, parts = fold_result(index, folds[index], model, test, validation, params, args.seed)
        epochs, best = [len(h["epoch"]) for h in histories], [h["best_epoch"] for h in histories]
        result.update(epochs=epochs if len(epochs) > 1 else epochs[0], best_epoch=best if len(best) > 1 else best[0],
                      train_seconds=round(seconds, 1))
        fold_parts.append(parts)
        # Every member with its best, or every member with its last weights, scored on the same clips
        # (where that differs from what the recipes keep): best-vs-last costs no extra run.
        for checkpoint in CHECKPOINTS:
            saved = all((directory / f"{checkpoint}.keras").exists()
                        for directory in member_dirs(run_dir, len(args.members)))
            if saved and any(member.keep != checkpoint for member in args.members):
                other = score(window_logits(load_members(run_dir, args.members, checkpoint), test), test,
                              result["temperature"])
                result[f"{checkpoint}_checkpoint"] = {key: other[key] for key in ("accuracy", "uar", "macro_f1")}
        results.append(result)
        log.info("fold %d: accuracy %.3f UAR %.3f macro-F1 %.3f | %s", index, result["accuracy"],
                 result["uar"], result["macro_f1"], json.dumps(result["robustness"]))
    summary = summarise_folds(results)
    summary["pooled_calibration"] = pooled_calibration(fold_parts)
    print_cv_table(results, summary)
    arch = recipe_arch(args)
    report = {"arch": arch, "seed": args.seed, "folds": results, "summary": summary,
              "members": [str(m) for m in args.members], "member_seeds": member_seeds(args), "epochs": args.epochs,
              "pool_validation": args.pool_validation, "auxiliary_emotions": auxiliary_emotions(args),
              "feature_params": params.to_dict(),
              "n_folds": args.cv, "speakers": len({c.speaker for c in clips}), "clips": len(clips)}
    artifacts.write_json(args.run_dir / f"cv_{arch}.json", report)
    write_out_of_fold(args.run_dir / f"oof_{arch}.json", report, fold_parts, results)
    if args.folds is None:  # only a complete cross-validation goes next to the model, for the app
        artifacts.write_json(args.artifacts / f"cv_{arch}.json", report)
    log.info("cross-validation results written to %s", args.run_dir / f"cv_{arch}.json")


def fold_result(index: int, test_speakers: list[str], model, test: WindowSet, validation: WindowSet,
                params: FeatureParams, seed: int) -> tuple[dict, dict[str, np.ndarray]]:
    """One fold's figures on its test speakers (see ``score_fold``) from ``model``'s window logits."""
    record = {
        "fold": index, "test_speakers": test_speakers,
        "test": {"clips": [Path(clip.path).name for clip in test.clips], "labels": test.clip_labels,
                 "conditions": {"clean": {"clip_index": test.clip_index, "logits": window_logits(model, test)},
                                **corrupted_logits(model, test.clips, params, seed)}},
        "validation": {"clips": [Path(clip.path).name for clip in validation.clips], "labels": validation.clip_labels,
                       "clip_index": validation.clip_index, "logits": window_logits(model, validation)},
    }
    return score_fold(record)


def score_fold(record: dict) -> tuple[dict, dict[str, np.ndarray]]:
    """A fold's figures from its window logits: temperature fitted on its validation speakers,
    accuracy, UAR, macro-F1, recall, ECE and robustness on its test speakers; and the parts that
    ``pooled_calibration`` pools over folds, with the record itself (``out_of_fold``).

    ``record`` holds the fold's window logits (``fold_result`` computes them with a model;
    ``benchmarks.oof_ensemble`` averages several CV runs' saved ones), so any average of CV runs
    is scored by this same code.
    """
    test, validation = record["test"], record["validation"]
    labels = np.asarray(test["labels"])
    validation_index = np.asarray(validation["clip_index"])
    temperature = fit_temperature(np.asarray(validation["logits"]), np.asarray(validation["labels"])[validation_index])

    def probabilities(condition: dict, scale: float = 1.0) -> np.ndarray:
        return clip_probabilities(np.asarray(condition["logits"]), np.asarray(condition["clip_index"]), scale)

    clean = test["conditions"]["clean"]
    clip_index = np.asarray(clean["clip_index"])
    parts = {"labels": labels, "before": probabilities(clean), "after": probabilities(clean, temperature),
             "logits": np.asarray(clean["logits"]), "window_labels": labels[clip_index], "clip_index": clip_index,
             "out_of_fold": record}
    report = classification_report(labels, parts["after"].argmax(axis=1))
    calibration = calibration_of(parts["before"], parts["after"], labels)
    robust = {}
    for name in CONDITIONS:
        if name in test["conditions"]:
            corrupted = classification_report(labels, probabilities(test["conditions"][name], temperature).argmax(axis=1))
            robust[name] = {"accuracy": corrupted["accuracy"], "uar": corrupted["uar"]}
    result = {
        "fold": record["fold"], "test_speakers": record["test_speakers"],
        "accuracy": report["accuracy"], "uar": report["uar"], "macro_f1": report["macro_f1"],
        "recall": {e: v["recall"] for e, v in report["per_class"].items()},
        "temperature": temperature,
        "ece_before": calibration["ece_before"],
        "ece_after": calibration["ece_after"],
        "ece_floor": calibration["ece_floor"],
        "confusion_matrix": report["confusion_matrix"],
        "robustness": robust,
    }
    return result, parts


# What a cross-validation report says about its run besides the members and the figures.
RUN_DESCRIPTION = ("arch", "seed", "epochs", "feature_params", "n_folds", "speakers", "clips",
                   "auxiliary_emotions")


def write_out_of_fold(path: Path, report: dict, fold_parts: list[dict], results: list[dict]) -> None:
    """``oof_<arch>.json``: the run's recipe and every fold's out-of-fold record (logits to 4 decimals),
    compact, for ``benchmarks.oof_ensemble``."""
    artifacts.write_json(path, {**{key: report[key] for key in RUN_DESCRIPTION if key in report},
                                "members": report["members"], "member_seeds": report.get("member_seeds"),
                                "pool_validation": report.get("pool_validation", False),
                                "folds": [{**rounded(parts["out_of_fold"]), "train_seconds": result["train_seconds"]}
                                          for parts, result in zip(fold_parts, results)]}, indent=None)


def rounded(record, decimals: int = 4):
    """``record`` with its arrays as (rounded) lists, for JSON."""
    if isinstance(record, dict):
        return {key: rounded(value, decimals) for key, value in record.items()}
    if isinstance(record, np.ndarray):
        return (np.round(record, decimals) if record.dtype.kind == "f" else record).tolist()
    return record


def pooled_calibration(fold_parts: list[dict[str, np.ndarray]]) -> dict:
    """ECE over every test clip of every fold, each scored by its own fold's model.

    A fold's ~176 clips put the ECE of even a perfectly calibrated model near 0.07; pooling the
    folds brings that sampling floor down to about 0.03, low enough to read a 0.05 target against.

    Each fold's clips are scaled by a temperature fitted on the *other* folds' test clips (cross-
    fitting: never on the speakers it is measured on). Two or three validation actors per fold fit a
    temperature poorly (docs/experiments.md); the ECE with their temperatures is reported too.
    ``cv_temperature``, fitted on every fold's test clips, is what ``train.py --temperature-from``
    gives the shipped model.
    """
    labels = np.concatenate([part["labels"] for part in fold_parts])
    unscaled = np.concatenate([part["before"] for part in fold_parts])
    with_validation_temperature = np.concatenate([part["after"] for part in fold_parts])
    result = {"clips": int(len(labels))}
    if len(fold_parts) < 2:  # nothing to cross-fit on
        return {**result, **calibration_of(unscaled, with_validation_temperature, labels),
                "scaled_with": "validation speakers"}
    fold_temperatures = [_temperature_over(fold_parts[:k] + fold_parts[k + 1:]) for k in range(len(fold_parts))]
    cross_fitted = np.concatenate([clip_probabilities(part["logits"], part["clip_index"], temperature)
                                   for part, temperature in zip(fold_parts, fold_temperatures)])
    return {**result, **calibration_of(unscaled, cross_fitted, labels), "scaled_with": "other folds",
            "fold_temperatures": fold_temperatures, "cv_temperature": _temperature_over(fold_parts),
            "ece_validation_temperature": reliability(with_validation_temperature, labels)["ece"]}


def _temperature_over(fold_parts: list[dict[str, np.ndarray]]) -> float:
    return fit_temperature(np.concatenate([part["logits"] for part in fold_parts]),
                           np.concatenate([part["window_labels"] for part in fold_parts]))


def summarise_folds(results: list[dict]) -> dict:
    def stats(values: list[float]) -> dict:
        return {"mean": float(np.mean(values)), "std": float(np.std(values))}

    summary = {key: stats([r[key] for r in results])
               for key in ("accuracy", "uar", "macro_f1", "ece_before", "ece_after", "ece_floor", "train_seconds")}
    summary["recall"] = {e: stats([r["recall"][e] for r in results]) for e in EMOTIONS}
    for condition in results[0]["robustness"]:
        for key in ("accuracy", "uar"):
            summary[f"{condition}_{key}"] = stats([r["robustness"][condition][key] for r in results])
    return summary


def print_cv_table(results: list[dict], summary: dict) -> None:
    print(f"\n{'fold':>5} {'acc':>6} {'UAR':>6} {'F1':>6} {'snr10 acc':>9} {'seconds':>8}")
    for r in results:
        print(f"{r['fold']:>5} {r['accuracy']:6.3f} {r['uar']:6.3f} {r['macro_f1']:6.3f} "
              f"{r['robustness']['snr_10db']['accuracy']:9.3f} {r['train_seconds']:8.0f}")
    s = summary
    print(f"{'mean':>5} {s['accuracy']['mean']:6.3f} {s['uar']['mean']:6.3f} {s['macro_f1']['mean']:6.3f} "
          f"{s['snr_10db_accuracy']['mean']:9.3f}")
    print(f"{'std':>5} {s['accuracy']['std']:6.3f} {s['uar']['std']:6.3f} {s['macro_f1']['std']:6.3f} "
          f"{s['snr_10db_accuracy']['std']:9.3f}")
    for key in ("best_checkpoint", "last_checkpoint"):
        if key in results[0]:
            values = [r[key]["accuracy"] for r in results]
            print(f"every member's {key.replace('_', ' ')}: accuracy {np.mean(values):.3f} ± {np.std(values):.3f} "
                  f"({', '.join(f'{v:.3f}' for v in values)})")
    c = s["pooled_calibration"]
    print(f"ECE over all {c['clips']} test clips: {c['ece_before']:.3f} unscaled, {c['ece_after']:.3f} with "
          f"temperatures fitted on the {c['scaled_with']} (a perfectly calibrated model would measure about "
          f"{c['ece_floor']:.3f} here)")
    if "cv_temperature" in c:
        print(f"  with each fold's validation temperature instead: {c['ece_validation_temperature']:.3f}; "
              f"temperature over all folds (for --temperature-from): {c['cv_temperature']:.3f}")
    print("per-class recall: " + ", ".join(f"{e} {s['recall'][e]['mean']:.2f}" for e in EMOTIONS))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.fresh and args.run_dir.exists():
        shutil.rmtree(args.run_dir)
    setup_logging(args.run_dir)
    params = FeatureParams(n_mels=args.n_mels, top_db=args.top_db)
    cv_calibration = None
    if args.temperature_from:
        try:  # checked before the data and the training, not after
            cv_calibration = cross_validated_temperature(args.temperature_from, args, params)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    try:
        clips, reports = clips_from_arguments(args)
    except DataUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    data_info = {report.corpus: report.record() for report in reports}
    for report in reports:
        print(report.summary())
    log.info("device: %s", configure_device())
    clips, features = load_windows(clips, params, args)
    emotion = [clip.emotion in EMOTIONS for clip in clips]
    auxiliary = ([c for c, keep in zip(clips, emotion) if not keep], [f for f, keep in zip(features, emotion) if not keep])
    clips, features = [c for c, keep in zip(clips, emotion) if keep], [f for f, keep in zip(features, emotion) if keep]
    log.info("%d clips, %d speakers, classes %s", len(clips), len({c.speaker for c in clips}), class_counts(clips))
    if auxiliary[0]:
        log.info("and %d clips of auxiliary emotions for training: %s", len(auxiliary[0]), class_counts(auxiliary[0]))
    if args.cv:
        run_cross_validation(args, clips, features, params, auxiliary)
    else:
        run_single(args, clips, features, params, data_info, cv_calibration, auxiliary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
