"""Training curves: accuracy and loss per epoch, the best epoch and the learning-rate schedule,
for the model or for each member of an averaged ensemble; for the Whisper model, whose head is
fitted in one go, why there are none."""

from __future__ import annotations

import streamlit as st

from ser_core.app import front_end, support, plots, words


def member_curves(history: dict, keep: str) -> None:
    epochs = history.get("epoch") or list(range(1, len(history.get("loss") or history.get("accuracy") or []) + 1))
    best = history.get("best_epoch")
    columns = st.columns(3)
    columns[0].metric("Epochs run", len(epochs))
    columns[1].metric("Best epoch (validation)", best if best is not None else "n/a",
                      help=None if best is not None else "This member was not validated: it trained on the "
                      "validation speakers too (train.py --pool-validation) and keeps its last epoch.")
    kept_epoch = best if keep == "best" else (epochs[-1] if epochs else None)
    columns[2].metric("Weights kept", f"epoch {kept_epoch} ({keep})" if kept_epoch is not None else "n/a")
    st.pyplot(plots.training_curves_figure(history))


support.ensure_entrypoint()
st.title("Training curves")
reports = support.load_reports()
if not reports.has_model:
    support.show_model_missing()
members = reports.member_histories
if not any(h.get("accuracy") or h.get("loss") for h in members):
    if reports.front_end == front_end.WHISPER:
        st.info(words.LINEAR_HEAD, icon=":material/info:")
        st.markdown(words.head_recipe((reports.config or {}).get("recipe") or {}))
        st.page_link("pages/test_results.py", label="How well it does: Test results",
                     icon=":material/fact_check:")
    else:
        st.info(words.NO_HISTORY.format(directory=reports.directory))
    st.stop()

st.caption(
    "The red line marks the epoch with the best validation accuracy. A member keeps either that epoch's "
    "weights (best) or the last epoch's (last). A stepped learning rate (halved when validation loss "
    "stalls) has each change marked by a dotted line; a warm-up + cosine schedule is drawn as a curve."
)
if len(members) == 1:
    member_curves(members[0], reports.kept_weights(members[0]))
else:
    st.markdown(f"The shipped model averages the outputs of **{len(members)} members**, trained differently "
                "on the same speakers (recipe `[NETWORK/]SCHEDULE[+ema]:AUGMENTATION@KEPT`):")
    for tab, member in zip(st.tabs([f"{i + 1}: {m.get('member', '?')}" for i, m in enumerate(members)]), members):
        with tab:
            member_curves(member, reports.kept_weights(member))
