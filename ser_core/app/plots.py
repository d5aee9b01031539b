"""Figures for the app: matplotlib for the analytic plots, Vega-Lite (Altair) for the live-ish charts.

Every function returns a new object and keeps no global state: matplotlib figures are built with
:class:`matplotlib.figure.Figure` (not ``pyplot``), so concurrent sessions never share a canvas.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ser_core.inference.features import mel_frequencies
from ser_core.inference.params import FeatureParams

ACCENT = "#d1495b"
MUTED = "#9aa5b1"
BEFORE = "#9aa5b1"
AFTER = "#2e86ab"
# One fixed colour per emotion so charts agree with each other.
EMOTION_COLOURS: dict[str, str] = {
    "angry": "#d1495b",
    "disgust": "#66a182",
    "fear": "#8e6c8a",
    "happy": "#edae49",
    "neutral": "#9aa5b1",
    "sad": "#2e86ab",
}


def _colour_scale(emotions: Sequence[str]) -> alt.Scale:
    palette = [EMOTION_COLOURS.get(emotion, "#555555") for emotion in emotions]
    return alt.Scale(domain=list(emotions), range=palette)


# ---------------------------------------------------------------- prediction views


def spectrogram_figure(
    features: np.ndarray, params: FeatureParams, start_s: float = 0.0, title: str | None = None,
    x_label: str = "Time (s)", floor_db: float | None = None,
) -> Figure:
    """One picture of the model's input ``[n_mels, n_frames]`` in dB below its loudest bin: a
    log-mel window of the CNN, or Whisper's log-mel converted by
    :func:`ser_core.app.front_end.whisper_to_db`. ``floor_db`` defaults to ``params.top_db``."""
    features = np.asarray(features)
    n_mels, n_frames = features.shape
    duration = (n_frames - 1) * params.hop_length / params.sample_rate
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(
        features, origin="lower", aspect="auto", cmap="magma",
        extent=(start_s, start_s + duration, -0.5, n_mels - 0.5),
        vmin=-(params.top_db if floor_db is None else floor_db), vmax=0.0, interpolation="nearest",
    )
    centres = mel_frequencies(params)
    ticks = np.linspace(0, n_mels - 1, 6).round().astype(int)
    ax.set_yticks(ticks, [f"{centres[t]:.0f}" for t in ticks])
    ax.set_xlabel(x_label)
    ax.set_ylabel("Frequency (Hz)")
    if title:
        ax.set_title(title, fontsize=10)
    colour_bar = fig.colorbar(image, ax=ax, pad=0.01)
    colour_bar.set_label("Loudness (dB, 0 = loudest)")
    return fig


def probability_frame(probabilities: Mapping[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        {"emotion": list(probabilities), "probability": [float(p) for p in probabilities.values()]}
    )


def probability_chart(
    probabilities: Mapping[str, float], threshold: float | None = None, height: int = 220
) -> alt.Chart:
    """One horizontal bar per emotion; the top one in the accent colour, the threshold as a rule."""
    frame = probability_frame(probabilities)
    top = frame.loc[frame["probability"].idxmax(), "emotion"] if len(frame) else None
    frame["top"] = frame["emotion"] == top
    frame["label"] = [f"{p:.0%}" for p in frame["probability"]]
    y = alt.Y("emotion:N", sort=list(probabilities), title=None)
    base = alt.Chart(frame).encode(y=y)
    bars = base.mark_bar(cornerRadiusEnd=3).encode(
        x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"),
                title="Probability"),
        color=alt.condition(alt.datum.top, alt.value(ACCENT), alt.value(MUTED)),
        tooltip=["emotion", alt.Tooltip("probability:Q", format=".1%")],
    )
    labels = base.mark_text(align="left", dx=4, fontWeight="bold").encode(
        x="probability:Q", text="label:N",
        opacity=alt.condition(alt.datum.top, alt.value(1.0), alt.value(0.7)),
    )
    layers: list[alt.Chart] = [bars, labels]
    if threshold is not None:
        line = alt.Chart(pd.DataFrame({"threshold": [threshold]}))
        rule = line.mark_rule(strokeDash=[4, 4], color="#333333").encode(
            x="threshold:Q", tooltip=[alt.Tooltip("threshold:Q", title="uncertain below", format=".0%")]
        )
        # Named at the top of the line, so the dashed line explains itself without a hover.
        name = line.mark_text(align="left", baseline="bottom", dx=4, dy=-2, fontSize=11,
                              color="#333333").encode(
            x="threshold:Q", y=alt.value(0), text=alt.value("“uncertain” below this line"),
        )
        layers += [rule, name]
    return alt.layer(*layers).properties(height=height)


def timeline_frame(
    points: Iterable[tuple[float, Mapping[str, float]]], emotions: Sequence[str]
) -> pd.DataFrame:
    rows = [
        {"time_s": float(t), "emotion": emotion, "probability": float(probs.get(emotion, 0.0))}
        for t, probs in points
        for emotion in emotions
    ]
    return pd.DataFrame(rows, columns=["time_s", "emotion", "probability"])


def timeline_chart(
    points: Iterable[tuple[float, Mapping[str, float]]],
    emotions: Sequence[str],
    x_title: str = "Time (s, window centre)",
    height: int = 260,
) -> alt.Chart:
    """Probability of each emotion over time, one line per emotion."""
    frame = timeline_frame(points, emotions)
    return (
        alt.Chart(frame)
        # Straight segments: a smooth curve through the points swings past them, below 0 % and
        # above 100 %, which no probability can do.
        .mark_line(point=True, interpolate="linear")
        .encode(
            x=alt.X("time_s:Q", title=x_title),
            y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1], clamp=True), axis=alt.Axis(format="%"),
                    title="Probability"),
            color=alt.Color("emotion:N", scale=_colour_scale(emotions), title="Emotion"),
            tooltip=[alt.Tooltip("time_s:Q", format=".1f"), "emotion",
                     alt.Tooltip("probability:Q", format=".1%")],
        )
        .properties(height=height)
    )


def answer_bands_chart(
    bands: Sequence[tuple[float, float, Sequence[str]]],
    emotions: Sequence[str],
    describe: Any = None,
    x_title: str = "Time (s)",
    labels: bool = True,
    height: int = 90,
    short: Any = None,
) -> alt.Chart:
    """One band per stretch of time, coloured by its most likely emotion and labelled with its answer.

    ``bands`` are ``(start s, end s, set of emotions)``; ``describe`` turns a set into words (the
    page's answer text, in the tooltip), ``short`` into the band's label (default: ``describe``). A
    one-emotion band is solid, a two-emotion band lighter, a "can't tell" band faint, so a glance shows
    where the model was sure.
    """
    describe = describe or (lambda names: " or ".join(names))
    short = short or describe
    rows = [{"start": float(a), "end": float(b), "middle": (float(a) + float(b)) / 2,
             "emotion": names[0] if names else "", "answer": describe(list(names)), "label": short(list(names)),
             "sureness": {1: 1.0, 2: 0.55}.get(len(names), 0.25)} for a, b, names in bands]
    frame = pd.DataFrame(rows, columns=["start", "end", "middle", "emotion", "answer", "label", "sureness"])
    base = alt.Chart(frame).encode(x=alt.X("start:Q", title=x_title), x2="end:Q")
    bars = base.mark_bar(cornerRadius=3, stroke="white", strokeWidth=1).encode(
        color=alt.Color("emotion:N", scale=_colour_scale(emotions), legend=None),
        opacity=alt.Opacity("sureness:Q", scale=None, legend=None),
        tooltip=[alt.Tooltip("start:Q", format=".1f", title="from (s)"),
                 alt.Tooltip("end:Q", format=".1f", title="to (s)"), alt.Tooltip("answer:N", title="answer"),
                 alt.Tooltip("emotion:N", title="most likely")],
    )
    chart = bars
    if labels:
        text = alt.Chart(frame).mark_text(fontSize=12, color="#1f2933", limit=160).encode(
            x="middle:Q", text="label:N")
        chart = bars + text
    return chart.properties(height=height)


# ---------------------------------------------------------------- evaluation views


def confusion_matrix_figure(
    matrix: Sequence[Sequence[float]], labels: Sequence[str], normalise: bool = False
) -> Figure:
    """Confusion matrix, rows = true emotion; counts, or each row divided by its total."""
    counts = np.asarray(matrix, dtype=float)
    values = counts
    if normalise:
        totals = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    fig = Figure(figsize=(5.2, 4.6), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1.0 if normalise else max(values.max(), 1))
    n = len(labels)
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("Predicted emotion")
    ax.set_ylabel("True emotion")
    ax.set_title("Row-normalised (recall per class)" if normalise else "Counts", fontsize=10)
    high = values.max() if values.size else 0
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            text = f"{values[i, j]:.2f}" if normalise else f"{int(round(values[i, j]))}"
            colour = "white" if high and values[i, j] > 0.6 * high else "black"
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    return fig


def reliability_figure(calibration: Mapping[str, Any]) -> Figure:
    """Reliability diagram: accuracy against confidence per bin, before and after temperature scaling."""
    reliability = calibration.get("reliability") or {}
    temperature = calibration.get("temperature")
    scaled = f"T = {temperature:.2f}" if isinstance(temperature, (int, float)) else "each fold's own T"
    panels = [
        ("before", "Before scaling", calibration.get("ece_before"), BEFORE),
        ("after", f"After scaling ({scaled})", calibration.get("ece_after"), AFTER),
    ]
    panels = [panel for panel in panels if reliability.get(panel[0])]
    fig = Figure(figsize=(4.2 * max(1, len(panels)), 4.0), layout="constrained")
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for ax, (key, title, ece, colour) in zip(axes, panels):
        curve = reliability[key]
        edges = np.asarray(curve.get("bin_edges", []), dtype=float)
        accuracy = np.asarray(curve.get("accuracy", []), dtype=float)
        confidence = np.asarray(curve.get("confidence", []), dtype=float)
        count = np.asarray(curve.get("count", np.ones_like(accuracy)), dtype=float)
        if edges.size == accuracy.size + 1:
            lefts, widths = edges[:-1], np.diff(edges)
        else:  # no edges: equal bins over [0, 1]
            lefts = np.linspace(0, 1, accuracy.size, endpoint=False)
            widths = np.full(accuracy.size, 1.0 / max(accuracy.size, 1))
        used = count > 0
        ax.bar(lefts[used], accuracy[used], width=widths[used], align="edge", color=colour,
               edgecolor="white", alpha=0.9, label="Accuracy")
        if confidence.size == accuracy.size:
            ax.bar(lefts[used], (confidence - accuracy)[used], bottom=accuracy[used],
                   width=widths[used], align="edge", color="none", edgecolor=ACCENT, hatch="//",
                   linewidth=0.8, label="Gap to confidence")
        ax.plot([0, 1], [0, 1], linestyle="--", color="#333333", linewidth=1, label="Perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("Confidence (top probability)")
        ax.set_ylabel("Accuracy")
        ece_text = f"ECE = {ece:.3f}" if isinstance(ece, (int, float)) else "ECE n/a"
        ax.set_title(f"{title}\n{ece_text}", fontsize=10)
        ax.legend(loc="upper left", fontsize=8)
    if not panels:
        axes[0].text(0.5, 0.5, "No reliability data", ha="center", va="center")
        axes[0].set_axis_off()
    return fig


def _learning_rate_changes(epochs: Sequence[float], rates: Sequence[float]) -> list[tuple[float, float]]:
    """``(epoch, new rate)`` wherever the learning rate differs from the epoch before."""
    changes = []
    for previous, (epoch, rate) in zip(rates, list(zip(epochs, rates))[1:]):
        if not np.isclose(previous, rate, rtol=1e-6, atol=0):
            changes.append((float(epoch), float(rate)))
    return changes


def training_curves_figure(history: Mapping[str, Sequence[float]]) -> Figure:
    """Accuracy and loss per epoch (training and validation), the best epoch marked, and the
    learning rate. A stepped rate (reduced on plateaus) has each change drawn as a dotted line across
    all panels; a smooth schedule (warm-up and cosine decay) is just drawn as a curve."""
    n = len(history.get("accuracy") or history.get("loss") or [])
    epochs = list(history.get("epoch") or range(1, n + 1))
    rates = history.get("learning_rate") or []
    best = history.get("best_epoch")
    panels = [("accuracy", "Accuracy"), ("loss", "Loss")]
    has_rates = len(rates) == len(epochs) and len(rates) > 0
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, 3 if has_rates else 2, squeeze=False)[0]
    changes = _learning_rate_changes(epochs, rates) if has_rates else []
    smooth_schedule = len(changes) > max(3, len(epochs) // 4)
    if smooth_schedule:
        changes = []
    for ax, (key, title) in zip(axes, panels):
        for name, label, colour in ((key, "training", MUTED), (f"val_{key}", "validation", AFTER)):
            values = history.get(name)
            if values and len(values) == len(epochs):
                ax.plot(epochs, values, marker="o", markersize=3, color=colour, label=label)
        if best is not None and best in epochs:
            index = epochs.index(best)
            ax.axvline(best, color=ACCENT, linewidth=1.2, label=f"best epoch ({best})")
            values = history.get(f"val_{key}")
            if values and len(values) == len(epochs):
                ax.plot([best], [values[index]], marker="*", markersize=12, color=ACCENT)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("Epoch")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
    if has_rates:
        ax = axes[2]
        if smooth_schedule:  # decays to zero: a log axis cannot show it
            ax.plot(epochs, rates, color="#333333")
            ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
        else:
            ax.step(epochs, rates, where="post", color="#333333")
            ax.set_yscale("log")
        ax.set_title("Learning rate", fontsize=10)
        ax.set_xlabel("Epoch")
        ax.set_ylabel("Learning rate")
        ax.grid(alpha=0.3, which="both")
    for index, (epoch, _) in enumerate(changes):
        for ax in axes:
            ax.axvline(epoch, color="#777777", linestyle=":", linewidth=1,
                       label="learning-rate change" if index == 0 and ax is axes[0] else None)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=8, loc="lower right")
    return fig
