"""Test results: first how the model does on a recording setup and language it never heard (each
corpus held out in turn), then on new people in their own rooms (ASED's speakers), in plain words; the
rest behind expanders; then what it was trained on (or, for a log-mel CNN, its held-out speakers and
the cross-validation over speakers)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ser_core.app import front_end, plots, support
from ser_core.evaluation import cv_report, loco_report
from ser_core.evaluation.metrics import report_from_confusion
from ser_core.inference.params import EMOTIONS

ECE_FLOOR_HELP = ("The ECE a perfectly calibrated model would still show on this many test clips, because "
                  "each clip is right or wrong by chance. Differences below it are noise.")


def metric_row(values: dict, fields: list[tuple[str, str, str]], helps: dict[str, str] | None = None) -> None:
    """One ``st.metric`` per ``(label, key, format)``; absent values show as n/a."""
    for column, (label, key, fmt) in zip(st.columns(len(fields)), fields):
        value = values.get(key)
        column.metric(label, fmt.format(value) if isinstance(value, (int, float)) else "n/a",
                      help=(helps or {}).get(key))


def confusion_and_per_class(section: dict, key: str) -> None:
    """Confusion matrix (counts and row-normalised) and the per-emotion precision/recall/F1 table."""
    labels, matrix = section.get("labels") or list(EMOTIONS), section.get("confusion_matrix")
    if matrix and len(matrix) == len(labels):
        left, right = st.columns(2)
        left.pyplot(plots.confusion_matrix_figure(matrix, labels, normalise=False))
        right.pyplot(plots.confusion_matrix_figure(matrix, labels, normalise=True))
    else:
        st.info("No confusion matrix recorded.")
    per_class = section.get("per_class") or {}
    if not per_class:
        st.info("No per-class scores recorded.")
        return
    table = pd.DataFrame.from_dict(per_class, orient="index")
    table.index.name = "emotion"
    st.dataframe(
        table.reset_index(), hide_index=True, key=key,
        column_config={
            "emotion": st.column_config.TextColumn("Emotion"),
            "support": st.column_config.NumberColumn("Test clips", format="%d"),
            **{name: st.column_config.NumberColumn(label, format="%.3f")
               for name, label in (("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"))},
        },
    )


ECE_FIELDS = [("ECE before", "ece_before", "{:.3f}"), ("ECE after", "ece_after", "{:.3f}"),
              ("ECE noise floor", "ece_floor", "{:.3f}")]


def cross_validation_section(directory, shipped_arch: str | None) -> None:
    """Mean ± std over the folds of ``train.py --cv``, per architecture, when the files exist."""
    st.subheader("Cross-validation on unseen speakers")
    results = cv_report.load_cv_reports(directory)
    if not results:
        st.info(f"Cross-validation results are not available (no cv_<arch>.json in {directory}). "
                "This runs it, 5 folds of unseen speakers:")
        st.code(cv_report.CV_COMMAND, language="bash")
        return
    st.caption(
        "Every speaker is a test speaker once: each fold trains a fresh model without its test "
        "speakers and measures it on them. Figures are the mean ± standard deviation over the folds. "
        "The partition (`train.py --seed`) decides which speakers share a fold: rows of different "
        "partitions were tested on different groups of speakers, which alone moves a figure by a few points."
    )
    st.dataframe(cv_report.summary_table(results, shipped_arch), hide_index=True, key="cv_summary")
    with st.expander("Per-fold figures"):
        st.dataframe(
            cv_report.folds_table(results, shipped_arch), hide_index=True, key="cv_folds",
            column_config={
                "Test speakers": st.column_config.TextColumn("Test speakers", width="medium"),
                **{name: st.column_config.NumberColumn(name, format="percent")
                   for name in ("Accuracy", "UAR")},
                **{name: st.column_config.NumberColumn(name, format="%.3f")
                   for name in ("Macro-F1", "ECE after")},
                "Training (s)": st.column_config.NumberColumn("Training (s)", format="%.0f"),
            },
        )
    arch = cv_report.featured_arch(results, shipped_arch)
    report = results[arch]
    clips = f", {report.clips:,} clips" if report.clips else ""
    speakers = f"{report.speakers} speakers" if report.speakers else "all speakers"
    members = f" (members: {', '.join(f'`{m}`' for m in report.members)})" if len(report.members) > 1 else ""
    st.caption(f"Below: **{cv_report.arch_label(report, shipped_arch)}**{members}, {report.folds_label()} over "
               f"{speakers}{clips}.")
    matrix = cv_report.pooled_confusion(report)
    if matrix is not None and len(matrix) == len(EMOTIONS):
        st.markdown(f"**Confusion matrix** of all {int(matrix.sum())} test clips, each scored by the fold "
                    "model that never heard its speaker")
        confusion_and_per_class(report_from_confusion(matrix), key="cv_per_class")
    left, right = st.columns(2)
    with left:
        st.markdown("**Recall per emotion** (mean over the folds)")
        recall = cv_report.recall_table(report)
        recall[["Recall (mean)", "Std"]] *= 100  # percentage points, so one format fits every row
        st.dataframe(
            recall, hide_index=True, key="cv_recall",
            column_config={
                "Recall (mean)": st.column_config.ProgressColumn(
                    "Recall (mean)", min_value=0.0, max_value=100.0, format="%.1f%%"),
                "Std": st.column_config.NumberColumn("± std", format="%.1f%%"),
            },
        )
    with right:
        st.markdown("**Robustness**: the test speakers' clips clean, with white noise, reverberated")
        st.dataframe(cv_report.robustness_table(report), hide_index=True, key="cv_robustness")
    pooled = cv_report.pooled_calibration(report)
    if pooled:
        st.markdown(f"**Calibration over all {int(pooled['clips'])} test clips**, each scored by its own fold's "
                    f"model, with {cv_report.pooled_scaling_text(pooled)}")
        metric_row(pooled, ECE_FIELDS, {"ece_floor": ECE_FLOOR_HELP})
        st.pyplot(plots.reliability_figure(pooled))


def shipped_model_on_test(test: dict, calibration: dict) -> None:
    """The committed model's figures on its own held-out test speakers."""
    st.caption(
        "Measured once, after training, on the held-out test speakers: nobody in this set was used "
        "for training or for choosing the model."
    )
    metric_row(test, [("Accuracy", "accuracy", "{:.1%}"), ("UAR (mean recall)", "uar", "{:.1%}"),
                      ("Macro-F1", "macro_f1", "{:.3f}"), ("Test clips", "n", "{:,}")])
    st.subheader("Confusion matrix")
    confusion_and_per_class(test, key="per_class")
    st.subheader("Calibration")
    if not calibration.get("reliability"):
        st.info("No calibration data recorded.")
        return
    st.caption(
        "Does a 70 % confidence mean right 70 % of the time? Bars on the diagonal are perfectly "
        "calibrated; ECE (expected calibration error) is the average gap. The temperature is fitted on "
        f"the {calibration.get('fitted_on', 'validation speakers')}; the figures below are measured on "
        f"the {calibration.get('measured_on', 'held-out speakers')}, so they show whether it helps there."
    )
    metric_row(calibration, [*ECE_FIELDS, ("Temperature", "temperature", "{:.2f}")], {"ece_floor": ECE_FLOOR_HELP})
    st.pyplot(plots.reliability_figure(calibration))


def data_split(split: dict, split_csv: pd.DataFrame | None) -> None:
    st.subheader("Data split")
    if split:
        rows = []
        for name, part in split.items():
            speakers = [str(s) for s in (part or {}).get("speakers", [])]
            rows.append({"split": name, "clips": part.get("clips"), "speakers": len(speakers),
                         "speaker ids": ", ".join(speakers)})
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="split_table")
    else:
        st.info("No split summary recorded.")
    if split_csv is not None and {"split", "emotion"} <= set(split_csv.columns):
        with st.expander("Clips per emotion and split (split.csv)"):
            st.dataframe(pd.crosstab(split_csv["emotion"], split_csv["split"]), key="split_counts")


PERCENT = "%.0f %%"
HOW_TO_READ = ("**How to read these figures.** Your laptop, microphone and room are a new recording setup, like "
               "each held-out corpus here. Expect the *as is* figure at first. If you give the model a few clips of "
               "your ordinary speech (**Adapt to my voice**), expect something nearer the *after adapting* one. "
               "Some emotions are much harder than others: the tables per emotion below show which are often missed.")
WORDS_EXPLAINED = """
- **Right, as is**: for each emotion the corpus has, the share of its clips the model named right; then the
  average over those emotions, so a rare emotion counts as much as a common one (experts call this the
  *unweighted average recall*, UAR, scored *strict*). Guessing gets 1 in 6 (17 %) when all six emotions occur.
- **Right, after adapting**: the same, after the model first listened to the setup's own speech, without its
  labels, and judged each clip relative to it (scored *adapted*). That is what **Adapt to my voice** does with
  your clips. For the groups of new people, each person is adapted to their own speech.
- **Held out**: the model was trained on all corpora but one and tested on every clip of that one, so its
  speakers, microphones, room and (for most) language were new to it. A corpus with only two emotions
  (BanglaSER-Ext) is used for training but never tested on its own: two emotions say too little.
- **Of all clips** (experts: *accuracy*): the share of all clips named right. When a corpus has many clips of one emotion, accuracy
  rewards guessing that emotion, which is why the tables above use the average per emotion.
- **—** in a table per emotion: the corpus has no clip of that emotion, so there is nothing to measure.
"""


def new_setup_section(report) -> None:
    """Each corpus held out: right how often on a setup (and language) it never heard, as is and adapted."""
    st.subheader("On a recording setup and language it never heard")
    st.markdown(loco_report.headline(report))
    st.dataframe(
        loco_report.corpus_table(report), hide_index=True, key="loco_corpora",
        column_config={
            loco_report.AS_IS: st.column_config.NumberColumn(
                loco_report.AS_IS, format=PERCENT,
                help="For each emotion, the share of its clips named right; averaged over the emotions"),
            loco_report.ADAPTED: st.column_config.NumberColumn(
                loco_report.ADAPTED, format=PERCENT,
                help="The same after the model adapted to the corpus's own speech, without its labels"),
            "Clips": st.column_config.NumberColumn("Clips", format="%d"),
            "Speakers": st.column_config.NumberColumn("Speakers", format="%d"),
        },
    )
    st.markdown(HOW_TO_READ)


def new_people_section(report) -> None:
    """The speaker cross-validation of ASED: new people, each in their own room."""
    ased = report.cv("ased")
    if ased is None:
        return
    st.subheader("New people, each in their own room")
    st.markdown("The people in this test recorded themselves where and when they chose: many rooms and devices, "
                "the case closest to yours. " + loco_report.new_people_text(ased))
    st.dataframe(loco_report.speaker_cv_table(ased), hide_index=True, key="cv_ased",
                 column_config={name: st.column_config.NumberColumn(name, format=PERCENT)
                                for name in (loco_report.AS_IS, loco_report.ADAPTED, loco_report.ALL_CLIPS)})


def more_results(report) -> None:
    """Everything else of the report, behind expanders."""
    with st.expander("Each emotion, in each corpus held out"):
        st.caption(f"For each emotion: the share of its clips named right ({loco_report.MISSING} = the corpus has "
                   "no clip of that emotion).")
        modes = ["strict", "adapted"] if report.has_adapted else ["strict"]
        names = {"strict": "As is", "adapted": "After adapting"}
        for tab, mode in zip(st.tabs([names[m] for m in modes]), modes):
            with tab:
                st.dataframe(loco_report.recall_table(report, mode), hide_index=True, key=f"loco_recall_{mode}")
    for cv in report.speaker_cv:
        if cv.name == "ased":
            continue
        with st.expander(f"New {cv.label} speakers, in the {cv.label} studio it knows"):
            st.markdown(loco_report.new_people_text(cv) + " These people are new, but the studio, microphones and "
                        "language are ones the model trained on, so expect less in your own room.")
            st.dataframe(loco_report.speaker_cv_table(cv), hide_index=True, key=f"cv_{cv.name}",
                         column_config={name: st.column_config.NumberColumn(name, format=PERCENT)
                                        for name in (loco_report.AS_IS, loco_report.ADAPTED, loco_report.ALL_CLIPS)})
    with st.expander("All figures, with the experts' names"):
        st.dataframe(loco_report.details_table(report), hide_index=True, key="loco_details",
                     column_config={name: st.column_config.NumberColumn(name, format="%.1f %%")
                                    for name in ("Strict UAR", "Adapted UAR", "Strict accuracy", "Adapted accuracy",
                                                 "Baseline strict UAR", "Baseline adapted UAR")})
        if report.baseline is not None:
            st.caption(f"Baseline: {report.baseline.model_name}, trained and tested the same way in the same run.")
        created = f", measured {report.created[:10]}" if report.created else ""
        trained_only = ", ".join(loco_report.CORPUS_LANGUAGES.get(name, (name, ""))[0] for name in report.trained_only)
        st.caption(f"{report.model_name}{created} ({loco_report.LOCO_FILE})"
                   + (f"; trained on but never held out: {trained_only}" if trained_only else "") + ".")
    with st.expander("What these words mean"):
        st.markdown(WORDS_EXPLAINED)


def generalisation_sections(directory) -> None:
    """The report's sections, or why there is none and the command that makes it."""
    try:
        report = loco_report.load_loco_report(directory)
    except loco_report.LocoReportError as error:
        st.subheader("On a recording setup and language it never heard")
        st.error(f"The report of these tests ({loco_report.LOCO_FILE}) is damaged: {error}. "
                 "Running this again rewrites it:")
        st.code(loco_report.LOCO_COMMAND, language="bash")
        return
    if report is None:
        st.subheader("On a recording setup and language it never heard")
        st.info(f"The figures for recording setups the model never heard are not there yet (no "
                f"{loco_report.LOCO_FILE} in {directory}). This measures them, holding out one "
                "corpus at a time:")
        st.code(loco_report.LOCO_COMMAND, language="bash")
        return
    new_setup_section(report)
    new_people_section(report)
    more_results(report)


def trained_on(config: dict) -> None:
    """The corpora the shipped model learned from: clips per emotion."""
    counts = config.get("training") or {}
    if not counts:
        return
    rows = [{"Corpus": loco_report.CORPUS_LANGUAGES.get(name, (name, ""))[0],
             "Language": loco_report.CORPUS_LANGUAGES.get(name, ("", ""))[1],
             **{emotion.capitalize(): per_emotion.get(emotion, 0) for emotion in EMOTIONS},
             "Clips": sum(per_emotion.values())} for name, per_emotion in counts.items()]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="trained_on")
    notes = []
    if "turev" in counts and (config.get("recipe") or {}).get("calm_as") == "neutral":
        notes.append("TurEV-DB's *calm* clips are counted as neutral")
    skipped = [loco_report.CORPUS_LANGUAGES.get(name, (name, ""))[0]
               for name in (config.get("recipe") or {}).get("skip_corpora") or []]
    if skipped:
        notes.append(f"{', '.join(skipped)} was left out: with it in training, the tests above came out about a point "
                     "worse (it holds only two emotions, recorded on its own devices)")
    if notes:
        st.caption("; ".join(notes) + ".")


support.ensure_entrypoint()
st.title("Test results")
reports = support.load_reports()
if not reports.has_model:
    support.show_model_missing()
generalisation_sections(reports.directory)
metrics = reports.metrics or {}
if reports.front_end == front_end.WHISPER:
    st.subheader("What it was trained on")
    st.markdown("Every clip of every corpus below: the figures above were each measured with a model trained "
                "the same way on all the other corpora (or people), never on the ones it was tested on.")
    trained_on(reports.config or {})
    calibration = metrics.get("calibration") or {}
    if isinstance(calibration.get("temperature"), (int, float)):
        st.caption("Its confidence figures were tuned on corpora it had not heard, so that an answer given with "
                   "70 % confidence is right about 7 times in 10 there; after adapting to a voice they are tuned "
                   "again, because the model is then right more often.")
        with st.expander("How the confidence was tuned (details)"):
            adapted = calibration.get("temperature_adapted")
            st.markdown(f"Temperature scaling: the model's scores are divided by T = {calibration['temperature']:.2f} "
                        f"before the softmax, T fitted on the {calibration.get('fitted_on', 'held-out corpora')}"
                        + (f"; once adapted, by T = {adapted:.2f}, fitted on {calibration['adapted_fitted_on']}."
                           if isinstance(adapted, (int, float)) and calibration.get("adapted_fitted_on") else "."))
    if cv_report.load_cv_reports(reports.directory):
        with st.expander("Earlier models (log-mel CNNs): cross-validation on RAVDESS speakers"):
            cross_validation_section(reports.directory, None)
    st.stop()
st.subheader("On speakers it never heard")
if reports.test_metrics:
    shipped_model_on_test(reports.test_metrics, metrics.get("calibration") or {})
elif metrics.get("split") and not (metrics["split"].get("test") or {}).get("clips"):
    st.info("The shipped model was trained on every speaker (training + validation speakers, none held "
            "out for testing). How its recipe does on speakers it never heard is measured by the "
            "cross-validation below, which trains one model per fold with that fold's speakers left out.")
    shipped_calibration = metrics.get("calibration") or {}
    if isinstance(shipped_calibration.get("temperature"), (int, float)):
        st.caption(f"Its confidences are scaled by the temperature T = {shipped_calibration['temperature']:.2f}, "
                   f"fitted on the {shipped_calibration.get('fitted_on', 'validation speakers')}.")
else:
    st.info(f"No test metrics in {reports.directory} (metrics.json is missing or has no “test” "
            "section). Training writes them.")
data_split(metrics.get("split") or {}, reports.split)
cross_validation_section(reports.directory, reports.arch)
