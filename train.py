"""Train the speech emotion model and serve it from artifacts/ once it has finished and been scored.

    python train.py                              # the shipped model, from every corpus in ../shared/data
    python train.py --data ased=DIR casia=DIR ...  # named corpora (ravdess tess nemo turev ased casia banglaser crema)
    python train.py --cv corpus                  # the protocol report alone: <run-dir>/loco_whisper.json
    python train.py --front-end log_mel --data ravdess=../shared/data/ravdess --cv 5  # the log-mel CNN ensemble
    python train.py --restore-previous           # serve the model the last run replaced again

Two front ends. whisper (default): data -> Whisper embeddings (cached) -> linear head (ridge + logistic regression),
temperature from leave-one-corpus-out logits -> artifacts. log_mel: data -> speaker split -> features
(cached) -> train -> calibrate -> evaluate -> artifacts. A run works in --run-dir (its artifacts/; the
CNN's checkpoints and log, so an interrupted run resumes), and the served model changes only at the
very end (ser_core.training.publish).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import shutil
import sys
import time
from pathlib import Path

from ser_core.data.arguments import add_corpus_arguments, clips_from_arguments
from ser_core.data.corpora import DataUnavailableError, class_counts
from ser_core.data.dataset import DEFAULT_CACHE_DIR
from ser_core.data.split import speaker_split, write_split_csv
from ser_core.data.subsets import (load_features, not_enough_data, pooled_training_set, separate_auxiliary,
                                   split_summary, subset, training_subset)
from ser_core.evaluation.fold_scoring import holdout_metrics, window_logits
from ser_core.evaluation.member_specs import ensemble_label
from ser_core.evaluation.metrics import fit_temperature
from ser_core.inference import artifacts
from ser_core.data.embedding_cache import DEFAULT_EMBEDDING_CACHE
from ser_core.inference.params import EMOTIONS, EmbeddingParams, FeatureParams
from ser_core.training.augment import PRESETS
from ser_core.training.cross_validation import run_cross_validation, unknown_folds
from ser_core.training.fit import configure_device, history_report, setup_logging, train_members
from ser_core.training.models import ARCHITECTURES, DEFAULT_ARCH
from ser_core.training.options import check_folds, cv_option, member_spec, number, whole_number
from ser_core.training import publish as publishing
from ser_core.training.publish import ArtifactsBusy, ArtifactsNotWritable, publish, restore_previous
from ser_core.data.dataset import CacheWriteError
from ser_core.training.recipes import DEFAULT_EPOCHS, DEFAULT_MEMBERS, MemberRecipe
from ser_core.training.record import CONFIG_RECIPE_KEYS, cross_validated_temperature, recipe_record
from ser_core.training import whisper_run
from ser_core.training.embedding_model import SHIPPED_RECIPE, train_embedding_model

log = logging.getLogger("train")
THRESHOLD = 0.55  # below this confidence the app says "uncertain"


# ----------------------------------------------------------------------------------------- options
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, every number range-checked (the message names a bad value) before any work."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    add_corpus_arguments(p)  # --data NAME[=DIR] ..., --ravdess-dir, --crema-dir, --calm-as
    p.set_defaults(calm_as=None)  # per front end: the Whisper recipe counts TurEV's Calm as neutral
    add("--front-end", choices=("whisper", "log_mel"), default="whisper",
        help="whisper: frozen Whisper-base embeddings + a ridge head (the shipped model); log_mel: the "
             "log-mel CNN ensemble (the options from --arch to --workers)")
    add("--arch", default=DEFAULT_ARCH, choices=sorted(ARCHITECTURES))
    add("--epochs", type=whole_number(1), default=DEFAULT_EPOCHS)
    add("--batch-size", type=whole_number(1), default=32)
    add("--learning-rate", type=number(above=0), help="default: per architecture")
    add("--patience", type=whole_number(0), default=20,
        help="plateau schedule: epochs without validation gain before stopping")
    add("--members", nargs="+", type=member_spec, default=[MemberRecipe.parse(m) for m in DEFAULT_MEMBERS],
        metavar="[ARCH/]SCHEDULE[+ema]:PRESET[@KEEP]",
        help=f"one model per spec, averaged (default: {' '.join(DEFAULT_MEMBERS)}). ARCH: this member's network "
             "instead of --arch. SCHEDULE plateau: halve the rate when validation loss stalls, stop early; cosine: "
             "warm up, decay to zero over --epochs. +ema: validate and keep the weights' moving average. PRESET: "
             "augmentation, one of " + ", ".join(sorted(PRESETS)) + ". KEEP: best (the epoch with the best "
             "validation accuracy; plateau's default) or last (the last epoch's weights; cosine's default)")
    add("--seed", type=int, default=0)
    add("--member-seed", type=int, metavar="SEED",
        help="seed of the first member's training (default: --seed; folds and splits keep --seed), so one copy of "
             "a repeated recipe can be cross-validated on its own with the seed it gets in the ensemble")
    add("--n-mels", type=whole_number(1), default=FeatureParams.n_mels, help="mel bands")
    add("--top-db", type=number(above=0), default=FeatureParams.top_db,
        help="dynamic range kept below each window's loudest bin")
    add("--test-fraction", type=number(low=0, high=0.5, hint=" (0.15 holds out 3 of 20 speakers)"), default=0.15,
        help="share of speakers held out for testing; 0 trains on every speaker but the validation ones "
             "(the figures on unseen speakers then come from --cv)")
    add("--temperature-from", type=Path, metavar="CV_JSON",
        help="calibrate with the temperature fitted on this cross-validation's out-of-fold test clips (a "
             "cv_<arch>.json of the same recipe) instead of on the validation speakers")
    add("--pool-validation", action="store_true",
        help="members that need no validation speakers (cosine schedule, last epoch kept) train on them too; "
             "plateau and @best members still hold them out")
    add("--auxiliary-emotions", action=argparse.BooleanOptionalAction, default=False,
        help="also train on RAVDESS's calm and surprised clips, as extra output classes that are dropped from "
             "the saved model (it predicts the six emotions only)")
    add("--cv", type=cv_option, metavar="K|corpus",
        help="instead of training the served model: K-fold speaker-independent cross-validation (log_mel), or "
             "corpus: leave one corpus out (whisper: strict and adapted, plus the speaker CVs inside ASED and "
             "RAVDESS; writes <run-dir>/loco_whisper.json, and into the served model's folder when it describes that "
             "model; a whisper training run writes and serves it with its model; "
             "log_mel: one fold per corpus, writes <run-dir>/loco_<arch>.json)")
    add("--folds", type=int, nargs="+", metavar="I",
        help="with --cv: only these folds (0-based; with --cv corpus, corpora in name order)")
    add("--artifacts", type=Path, default=artifacts.ARTIFACTS_DIR,
        help="the served folder: a finished run's model replaces the one there, which moves to previous/")
    add("--restore-previous", action="store_true", help="serve the model in <--artifacts>/previous again; no training")
    add("--force", action="store_true",
        help=f"serve the new model even when its held-out UAR is more than {publishing.FAR_BELOW:.2f} below the "
             "served model's (the quality gate)")
    add("--cache-dir", type=Path, help=f"feature cache (default: {DEFAULT_EMBEDDING_CACHE} for whisper, "
                                             f"{DEFAULT_CACHE_DIR} for log_mel)")
    add("--run-dir", type=Path, default=Path("runs/latest"),
        help="checkpoints, log and the run's artifacts/; an interrupted run resumes from here when started again")
    add("--fresh", action="store_true", help="ignore (delete) any interrupted run in --run-dir")
    add("--workers", type=whole_number(1), help="feature-extraction processes (default: CPU count)")
    # Ray (ser_core.scale) under names of their own: --workers keeps meaning local processes.
    add("--ray-workers", type=whole_number(1), metavar="N",
        help="whisper: compute the missing embeddings on a local Ray with N CPUs first (docs/scale.md)")
    add("--ray-address", metavar="ADDRESS",
        help="whisper: compute the missing embeddings on this Ray cluster first ('auto', ray://HOST:10001); the "
             "corpus paths must be readable on its nodes")
    add("--verbose", type=int, default=2, choices=(0, 1, 2), help="Keras progress output")
    args = p.parse_args(argv)
    whisper = args.front_end == "whisper"
    args.calm_as = args.calm_as or (SHIPPED_RECIPE.calm_as if whisper else "drop")
    args.cache_dir = args.cache_dir or (DEFAULT_EMBEDDING_CACHE if whisper else DEFAULT_CACHE_DIR)
    if args.cv == "corpus" and args.folds and whisper:
        p.error("argument --folds: the whisper front end's --cv corpus holds out every corpus (seconds from the "
                "cached embeddings)")
    if args.folds and args.cv is None:
        p.error("argument --folds: chooses folds of a cross-validation; give --cv K or --cv corpus too")
    if args.cv != "corpus":  # the corpus folds are checked once the data is known (unknown_folds)
        check_folds(p, args.cv, args.folds)
    if whisper and args.cv not in (None, "corpus"):
        p.error(f"--cv {args.cv} goes with --front-end log_mel: the whisper front end cross-validates with --cv corpus")
    args.members = [member.on(args.arch) for member in args.members]  # "ARCH/" only where it differs
    if args.cv and args.temperature_from:
        p.error("--temperature-from calibrates a model trained without --cv")
    if (args.ray_workers or args.ray_address) and not whisper:
        p.error("--ray-workers / --ray-address fill the Whisper embedding cache: use them with --front-end whisper")
    return args


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


# ----------------------------------------------------------------------------------------- run guard
def main(argv: list[str] | None = None) -> int:
    """One run at a time per served folder (its lock; the second run names the first and stops),
    a dead run's leftovers recovered, the folder's room checked before the work, a full disk or
    Ctrl-C a one-line message that says nothing was replaced (exit 2, 130); then :func:`run`."""
    args = parse_args(argv)
    try:
        with publishing.artifacts_lock(args.artifacts):
            for step in publishing.recover(args.artifacts):
                print(f"{args.artifacts}: {step}")
            if not args.restore_previous:
                publishing.check_writable(args.artifacts)
            return run(args)
    except (ArtifactsBusy, ArtifactsNotWritable, CacheWriteError) as error:
        return fail(f"{error}.")
    except publishing.InterruptedAfterPublishing:
        print("interrupted after the new model was served (it stays; the replaced one is in previous/)",
              file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"interrupted, nothing was replaced: {args.artifacts} serves the same model as before",
              file=sys.stderr)
        return 130


def serve(out: Path, args: argparse.Namespace) -> int:
    """Publish the run's files unless they score far below the served model (``--force`` overrides)."""
    if args.front_end != "whisper":  # a LOCO report left in the run folder by an earlier Whisper run
        (out / whisper_run.LOCO_FILE).unlink(missing_ok=True)
    if not args.force and (shortfall := publishing.quality_shortfall(out, args.artifacts)):
        return fail(f"{shortfall} The new model was not served: {args.artifacts} serves the same model as before. "
                    f"The new one is in {out}; to serve it anyway, run the same command with --force.")
    try:
        publish(out, args.artifacts)
    except OSError as error:  # a full disk while copying: publish has removed its copy
        return fail(f"could not copy the new model into {args.artifacts} ({error.strerror or error}); nothing was "
                    f"replaced: it serves the same model as before. Free some space there and run this again.")
    log.info("artifacts written to %s; the model it replaced is in %s (python train.py --restore-previous)",
             args.artifacts, args.artifacts / "previous")
    return 0


def write_loco_report(report: dict, training_set: str, args: argparse.Namespace) -> list[Path]:
    """``--cv corpus``: into the run folder, and into the served model's directory only when that
    model was trained on the same clips with the same recipe (the report then describes it; the
    app never shows a report of another model)."""
    paths = [args.run_dir / whisper_run.LOCO_FILE]
    served = artifacts.served_model_dir(args.artifacts)
    if (artifacts.read_json_artifact(artifacts.CONFIG_FILE, served) or {}).get("training_set") == training_set:
        paths.append(served / whisper_run.LOCO_FILE)
    else:
        log.info("the served model was trained on other clips or another recipe: the app will not show this report")
    for path in paths:
        artifacts.write_json(path, report)
    return paths


# ----------------------------------------------------------------------------------------- the recipe
def run(args: argparse.Namespace) -> int:
    if args.restore_previous:
        if not restore_previous(args.artifacts):
            return fail(f"no previous model in {args.artifacts / 'previous'} to restore")
        print(f"serving the previous model again from {args.artifacts} (the replaced one is now in previous/)")
        return 0
    if args.fresh and args.run_dir.exists():
        shutil.rmtree(args.run_dir)
    setup_logging(args.run_dir)
    params = FeatureParams(n_mels=args.n_mels, top_db=args.top_db)
    record = recipe_record(arch=args.arch, members=args.members, seed=args.seed, member_seed=args.member_seed,
                           epochs=args.epochs, batch_size=args.batch_size, pool_validation=args.pool_validation,
                           auxiliary_emotions=args.auxiliary_emotions, params=params)
    cv_calibration = None
    if args.temperature_from:
        try:  # checked before the data and the training, not after
            cv_calibration = cross_validated_temperature(args.temperature_from, record)
        except ValueError as error:
            return fail(str(error))

    # --- data: every corpus asked for, as clips (path, speaker, gender, emotion)
    try:
        clips, reports = clips_from_arguments(args)
    except DataUnavailableError as error:
        return fail(str(error))
    data_info = {report.corpus: report.record() for report in reports}
    for report in reports:
        print(report.summary())
    enough = dict(cv=args.cv, test_fraction=args.test_fraction, seed=args.seed)
    if args.front_end == "whisper":
        return train_whisper(args, [c for c in clips if c.emotion in EMOTIONS], data_info)
    if problem := (not_enough_data([c for c in clips if c.emotion in EMOTIONS], **enough)
                   or unknown_folds(clips, args.cv, args.folds)):  # both before any feature is computed
        return fail(problem)

    # --- features: log-mel windows, cached; files that do not decode are dropped (and named)
    log.info("device: %s", configure_device())
    clips, features, undecodable = load_features(clips, params, args.cache_dir, args.workers)
    clips, features, auxiliary = separate_auxiliary(clips, features)
    if problem := not_enough_data(clips, undecodable=undecodable, **enough):
        return fail(problem)
    log.info("%d clips, %d speakers, classes %s", len(clips), len({c.speaker for c in clips}), class_counts(clips))
    if auxiliary[0]:
        log.info("and %d clips of auxiliary emotions for training: %s", len(auxiliary[0]), class_counts(auxiliary[0]))
    if args.cv:
        run_cross_validation(args, record, clips, features, params, auxiliary)
        return 0

    # --- speaker split: nobody is in two of train / validation / test
    assignment = speaker_split(clips, seed=args.seed, test=args.test_fraction)
    train = training_subset(clips, features, auxiliary, assignment, "train")
    validation = subset(clips, features, assignment, "validation")
    test = subset(clips, features, assignment, "test") if "test" in assignment.values() else None

    # --- train: every member, averaged into one model (resumes an interrupted run)
    model, histories, seconds = train_members(train, validation, params, args, args.run_dir,
                                              pooled_training_set(clips, features, auxiliary, assignment,
                                                                  args.pool_validation))

    # --- calibrate: one temperature, from the cross-validation when given, else the validation speakers
    validation_logits = window_logits(model, validation)
    if cv_calibration:
        temperature = cv_calibration["temperature"]
        fitted_on = (f"cross-validation's out-of-fold test clips ({cv_calibration['clips']} clips of "
                     f"{cv_calibration['speakers']} speakers, each scored by a model that never heard its speaker)")
    else:
        temperature, fitted_on = fit_temperature(validation_logits, validation.labels), "validation speakers"

    # --- evaluate: on the test speakers (or, with --test-fraction 0, the validation ones)
    test_logits = window_logits(model, test) if test is not None else None
    metrics = holdout_metrics(validation_logits, validation, test_logits, test, temperature, fitted_on)
    metrics["split"] = split_summary(clips, assignment)
    scored_on = metrics["test" if test is not None else "validation"]
    log.info("%s speakers: accuracy %.3f, UAR %.3f, macro-F1 %.3f (n=%d); temperature %.2f",
             "test" if test is not None else "no test speakers; validation", scored_on["accuracy"],
             scored_on["uar"], scored_on["macro_f1"], scored_on["n"], temperature)

    # --- artifacts: written into the run folder, then served in place of the last model
    corpora = ", ".join(sorted({c.corpus for c in clips}))
    config = {
        "model_name": f"{ensemble_label(record['members'], record['arch'])} ({corpora})",
        "arch": record["arch"], "parameters": int(model.count_params()), "emotions": list(EMOTIONS),
        "feature_params": record["feature_params"], "temperature": temperature, "threshold": THRESHOLD,
        "trained_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "training_seconds": round(seconds, 1), "seed": record["seed"],
        "recipe": {**{key: record[key] for key in CONFIG_RECIPE_KEYS}, "test_fraction": args.test_fraction},
        "data": data_info,
    }
    out = args.run_dir / "artifacts"
    artifacts.save_model(model, out / artifacts.MODEL_FILE)
    artifacts.write_json(out / artifacts.CONFIG_FILE, config)
    artifacts.write_json(out / artifacts.METRICS_FILE, metrics)
    artifacts.write_json(out / artifacts.HISTORY_FILE, history_report(histories))
    write_split_csv(clips, assignment, out / artifacts.SPLIT_FILE)
    return serve(out, args)


# ----------------------------------------------------------------------------------------- the Whisper recipe
def train_whisper(args: argparse.Namespace, clips: list, data_info: dict) -> int:
    """Whisper embeddings (cached) -> the shipped recipe's head on every clip -> artifacts; or --cv corpus."""
    recipe, params = dataclasses.replace(SHIPPED_RECIPE, calm_as=args.calm_as), EmbeddingParams()
    skipped = [c for c in clips if c.corpus in recipe.skip_corpora]
    if skipped:
        log.info("%d clips of %s left out: the recipe measured them to lower its held-out figures "
                 "(docs/experiments.md, issue 21)", len(skipped), ", ".join(sorted({c.corpus for c in skipped})))
        clips = [c for c in clips if c.corpus not in recipe.skip_corpora]
        data_info = {name: info for name, info in data_info.items() if name not in recipe.skip_corpora}
    if len({c.corpus for c in clips}) < 2:
        return fail("the Whisper model fits its temperature by leaving one corpus out: give two corpora or more")
    start = time.perf_counter()
    if args.ray_workers or args.ray_address:  # the cache filled on Ray; the read below then finds every clip
        from ser_core.scale.embedding import embed_on_ray

        embed_on_ray([clip.path for clip in clips], params, cache_dir=args.cache_dir, workers=args.ray_workers,
                     address=args.ray_address)
    data = whisper_run.embeddings(clips, params, args.cache_dir, args.workers)
    log.info("%d clips embedded in %.0f s", len(data), time.perf_counter() - start)
    whisper_run.mention_stale_cache(args.cache_dir)
    corpora = sorted(set(data.corpus.tolist()))
    name = whisper_run.model_name(recipe, params, corpora)

    # --- the protocol: each corpus held out (strict and adapted), speaker CV inside ASED and RAVDESS
    training_set = whisper_run.training_set_fingerprint(data, recipe, params, args.seed)
    report = whisper_run.loco_report(data, recipe, name, seed=args.seed)
    log_protocol(report)
    baseline = whisper_run.baseline_recipe(recipe)
    if baseline is not None:  # the ridge alone, same clips and folds: what the shipped recipe has to beat
        report["baseline"] = whisper_run.loco_report(data, baseline, whisper_run.model_name(baseline, params, corpora),
                                                     seed=args.seed)
        log.info("the ridge alone, same protocol: mean strict UAR %.3f, adapted %.3f (this recipe: %.3f, %.3f)",
                 report["baseline"]["mean"]["strict_uar"], report["baseline"]["mean"]["adapted_uar"],
                 report["mean"]["strict_uar"], report["mean"]["adapted_uar"])
    if args.cv == "corpus":  # the report alone, instead of training the served model
        written = write_loco_report(report, training_set, args)
        log.info("written to %s", " and ".join(map(str, written)))
        return 0

    # --- train: the head on every clip; temperature from leave-one-corpus-out logits
    fit_start = time.perf_counter()
    model, config = train_embedding_model(data, recipe, params, seed=args.seed)
    seconds = time.perf_counter() - fit_start
    log.info("head trained in %.0f s; temperature %.2f; leave-one-corpus-out strict UAR %s", seconds,
             config["temperature"], ", ".join(f"{c} {u:.3f}" for c, u in config["loco"]["uar"].items()))
    log.info("'uncertain' below %.2f (%s); ECE %.3f before the temperature, %.3f after", config["threshold"],
             config["uncertain"]["rule"], config["uncertain"]["ece_before"], config["uncertain"]["ece_after"])
    adapted = config["uncertain_adapted"]
    log.info("adapted to a held-out speaker (5-20 clips): temperature %.2f, ECE %.3f; at %.2f, %.0f%% answered",
             config["temperature_adapted"], adapted["ece_after"], config["threshold"],
             100 * next(row["answered"] for row in adapted["table"] if row["threshold"] == config["threshold"]))
    if "emotion_sets" in config:  # the answer a person sees: the emotions that hold the true one 9 times in 10
        sets = config["emotion_sets"]
        held_out = sets["held_out"]["strict"][sets["method"]]
        log.info("answer sets (%s): at 90%%, each corpus held out, coverage %s; mean set size %.2f, one emotion "
                 "named for %.0f%% of clips", sets["method"],
                 ", ".join(f"{c} {r['coverage']:.1%}" for c, r in held_out.items()),
                 sets["held_out_mean"]["strict"][sets["method"]]["mean_set_size"],
                 100 * sets["held_out_mean"]["strict"][sets["method"]]["single_rate"])
    if "self_training" in config:
        batch = config["self_training"]["mean_uar"]
        log.info("a held-out corpus adapted to as one batch and self-trained: mean UAR %.3f; each speaker adapted to "
                 "separately: %.3f, %.3f self-trained; temperature %.2f", batch["adapted_self_trained"],
                 batch["adapted_speaker"], batch["adapted_speaker_self_trained"], config["temperature_self_trained"])

    # --- artifacts: written into the run folder, then served in place of the last model
    config, metrics, history = whisper_run.served_files(data, config, name=name, threshold=THRESHOLD,
                                                        seconds=seconds, data_info=data_info)
    config["training_set"] = training_set  # lets a later --cv corpus tell whether its report describes this model
    out = args.run_dir / "artifacts"
    artifacts.save_model(model, out / artifacts.MODEL_FILE)
    artifacts.write_json(out / artifacts.CONFIG_FILE, config)
    artifacts.write_json(out / artifacts.METRICS_FILE, metrics)
    artifacts.write_json(out / artifacts.HISTORY_FILE, history)
    artifacts.write_json(out / whisper_run.LOCO_FILE, report)  # served with the model (Test results page)
    write_split_csv(whisper_run.embedded_clips(data, clips), dict.fromkeys(data.speaker.tolist(), "train"),
                    out / artifacts.SPLIT_FILE)
    return serve(out, args)


def log_protocol(report: dict) -> None:
    """The protocol's figures, one line per held-out corpus and cross-validation."""
    for corpus, figures in report["corpora"].items():
        log.info("%-9s held out: strict UAR %.3f, adapted UAR %.3f", corpus, figures["strict"]["uar"],
                 figures["adapted"]["uar"])
    log.info("mean over %d held-out corpora: strict UAR %.3f, adapted UAR %.3f", len(report["corpora"]),
             report["mean"]["strict_uar"], report["mean"]["adapted_uar"])
    for corpus, cv in report["speaker_cv"].items():
        for clips in ("all", "common_sentences"):
            if clips in cv:
                log.info("%s %d-fold speaker CV, %s: strict UAR %.3f (accuracy %.3f), adapted UAR %.3f", corpus,
                         cv["folds"], clips.replace("_", " "), cv[clips]["strict"]["uar"],
                         cv[clips]["strict"]["accuracy"], cv[clips]["adapted"]["uar"])


if __name__ == "__main__":
    sys.exit(main())
