"""Training curves: accuracy and loss per epoch, the best epoch and the learning-rate schedule."""

from __future__ import annotations

import streamlit as st

from ser_core import app_support, plots

app_support.ensure_entrypoint()
st.title("Training curves")
reports = app_support.load_reports()
if not reports.has_model:
    app_support.show_model_missing()
history = reports.history
if not history or not (history.get("accuracy") or history.get("loss")):
    st.info(f"No training history in {reports.directory} (history.json). Training writes it.")
    st.stop()

epochs = history.get("epoch") or list(range(1, len(history.get("loss") or history["accuracy"]) + 1))
best = history.get("best_epoch")
columns = st.columns(3)
columns[0].metric("Epochs run", len(epochs))
columns[1].metric("Best epoch (kept)", best if best is not None else "n/a")
val_accuracy = history.get("val_accuracy") or []
if best in epochs and len(val_accuracy) == len(epochs):
    columns[2].metric("Validation accuracy at best", f"{val_accuracy[epochs.index(best)]:.1%}")
st.pyplot(plots.training_curves_figure(history))
st.caption(
    "The weights kept are the best epoch's (red line) by validation score; dotted lines mark "
    "each learning-rate change."
)
