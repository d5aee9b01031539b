"""Test results: how the committed model does on speakers it never heard in training."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ser_core import app_support, plots

app_support.ensure_entrypoint()
st.title("Test results")
reports = app_support.load_reports()
if not reports.has_model:
    app_support.show_model_missing()
test = reports.test_metrics
if not test:
    st.info(f"No test metrics in {reports.directory} (metrics.json is missing or has no “test” "
            "section). Training writes them.")
    st.stop()

st.caption(
    "Measured once, after training, on the held-out test speakers: nobody in this set was used "
    "for training or for choosing the model."
)
columns = st.columns(4)
for column, (label, key, fmt) in zip(
    columns,
    [("Accuracy", "accuracy", "{:.1%}"), ("UAR (mean recall)", "uar", "{:.1%}"),
     ("Macro-F1", "macro_f1", "{:.3f}"), ("Test clips", "n", "{:,}")],
):
    value = test.get(key)
    column.metric(label, fmt.format(value) if isinstance(value, (int, float)) else "n/a")

labels = test.get("labels") or list((reports.config or {}).get("emotions") or [])
matrix = test.get("confusion_matrix")
st.subheader("Confusion matrix")
if matrix and labels and len(matrix) == len(labels):
    left, right = st.columns(2)
    left.pyplot(plots.confusion_matrix_figure(matrix, labels, normalise=False))
    right.pyplot(plots.confusion_matrix_figure(matrix, labels, normalise=True))
else:
    st.info("No confusion matrix recorded.")

st.subheader("Per emotion")
per_class = test.get("per_class") or {}
if per_class:
    table = pd.DataFrame.from_dict(per_class, orient="index")
    table.index.name = "emotion"
    st.dataframe(
        table.reset_index(), hide_index=True, key="per_class",
        column_config={
            "emotion": st.column_config.TextColumn("Emotion"),
            "support": st.column_config.NumberColumn("Test clips", format="%d"),
            **{name: st.column_config.NumberColumn(label, format="%.3f")
               for name, label in (("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"))},
        },
    )
else:
    st.info("No per-class scores recorded.")

st.subheader("Calibration")
calibration = (reports.metrics or {}).get("calibration") or {}
if calibration.get("reliability"):
    st.caption(
        "Does a 70 % confidence mean right 70 % of the time? Bars on the diagonal are perfectly "
        "calibrated; ECE is the average gap. Temperature scaling (fitted on validation) shrinks it."
    )
    cols = st.columns(3)
    for column, (label, key) in zip(cols, [("ECE before", "ece_before"), ("ECE after", "ece_after"),
                                           ("Temperature", "temperature")]):
        value = calibration.get(key)
        column.metric(label, f"{value:.3f}" if isinstance(value, (int, float)) else "n/a")
    st.pyplot(plots.reliability_figure(calibration))
else:
    st.info("No calibration data recorded.")

st.subheader("Data split")
split = (reports.metrics or {}).get("split") or {}
if split:
    rows = []
    for name, part in split.items():
        speakers = [str(s) for s in (part or {}).get("speakers", [])]
        rows.append({"split": name, "clips": part.get("clips"), "speakers": len(speakers),
                     "speaker ids": ", ".join(speakers)})
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="split_table")
else:
    st.info("No split summary recorded.")
if reports.split is not None and {"split", "emotion"} <= set(reports.split.columns):
    with st.expander("Clips per emotion and split (split.csv)"):
        st.dataframe(pd.crosstab(reports.split["emotion"], reports.split["split"]), key="split_counts")
