"""Shared helpers of the Streamlit app: the cached predictor, the reports in ``artifacts/``, the
sidebar, audio intake and the result views that several pages show.

The pages in ``pages/`` hold layout and widgets only and call into this module.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import streamlit as st

from ser_core import artifacts
from ser_core.audio import SUPPORTED_EXTENSIONS, AudioError
from ser_core.artifacts import ModelNotFoundError, read_json_artifact

LOGGER = logging.getLogger("ser_app")

DEFAULT_THRESHOLD = 0.55
THRESHOLD_KEY = "threshold"
KAGGLE_COMMAND = "python train.py"
UPLOAD_TYPES: list[str] = [extension.lstrip(".") for extension in SUPPORTED_EXTENSIONS]


# ---------------------------------------------------------------- navigation


def ensure_entrypoint() -> None:
    """Make a page that was opened by its URL run through ``streamlit_app.py``.

    Streamlit treats a ``pages/`` folder next to the entry script as a legacy multipage app until
    ``st.navigation`` has been called once in the server process: a fresh server asked straight for
    ``/live`` would run ``pages/live.py`` alone, without the entry point's navigation, sidebar and
    WebRTC preloading. Each page calls this first; in that one situation it switches the server to
    ``st.navigation`` mode and reruns, which runs the entry point and then this page.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a future Streamlit without the legacy mode
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


# ---------------------------------------------------------------- artifacts and the model


def artifacts_directory() -> Path:
    """The artifacts folder in use (``$SER_ARTIFACTS_DIR`` overrides ``artifacts/``)."""
    return Path(artifacts.artifacts_dir())


def train_commands() -> list[str]:
    """The commands that train a model: from the local RAVDESS copy, or downloading from Kaggle."""
    return [artifacts.TRAIN_COMMAND, KAGGLE_COMMAND]


def _model_stamp(directory: Path) -> tuple[float, float]:
    """Modification times of the model and its config: a retrained model gets a new cache entry."""
    stamps = []
    for name in (artifacts.MODEL_FILE, artifacts.CONFIG_FILE):
        try:
            stamps.append((directory / name).stat().st_mtime)
        except OSError:
            stamps.append(0.0)
    return stamps[0], stamps[1]


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _load_predictor(directory: str, stamp: tuple[float, float]):
    """One predictor per (folder, model version) and server process, shared by all sessions.

    Exceptions are not cached: once a model is trained, the next rerun picks it up.
    """
    from ser_core.predictor import Predictor  # imports TensorFlow: only where a model is needed

    del stamp  # part of the cache key only
    LOGGER.info("loading the model from %s", directory)
    return Predictor.from_artifacts(directory=directory)


def get_predictor():
    """The shared :class:`~ser_core.predictor.Predictor`; raises :class:`ModelNotFoundError`."""
    directory = artifacts_directory()
    return _load_predictor(str(directory.resolve()), _model_stamp(directory))


def show_model_missing(error: Exception | None = None) -> None:
    """Say plainly that there is no usable model and how to train one."""
    directory = artifacts_directory()
    detail = str(error) if error else f"No trained model in {directory}."
    st.error(f"**No model available.** {detail}")
    st.markdown("Train one from the local RAVDESS copy:")
    st.code(artifacts.TRAIN_COMMAND, language="bash")
    st.markdown("or download the corpora from Kaggle and train:")
    st.code(KAGGLE_COMMAND, language="bash")
    st.caption("Then reload this page: the app picks the new model up without a restart.")


def predictor_or_stop():
    """The predictor, or (no usable model) the how-to-train message and the end of this page run."""
    try:
        return get_predictor()
    except ModelNotFoundError as error:
        show_model_missing(error)
    except Exception:  # a broken install, not a user error: log it, keep the page clean
        LOGGER.exception("loading the model failed")
        st.error(
            "The model could not be loaded because of an unexpected error (logged on the server). "
            f"Retraining may help: `{artifacts.TRAIN_COMMAND}`"
        )
    st.stop()


@dataclass
class Reports:
    """The JSON/CSV reports written by ``train.py``; any of them may be missing."""

    directory: Path
    config: dict[str, Any] | None
    metrics: dict[str, Any] | None
    history: dict[str, Any] | None
    split: pd.DataFrame | None

    @property
    def has_model(self) -> bool:
        return (self.directory / artifacts.MODEL_FILE).is_file() and self.config is not None

    @property
    def model_name(self) -> str | None:
        if not self.config:
            return None
        return self.config.get("model_name") or self.config.get("arch")

    @property
    def test_metrics(self) -> dict[str, Any] | None:
        test = (self.metrics or {}).get("test")
        return test if isinstance(test, dict) else None

    @property
    def threshold(self) -> float:
        try:
            return float((self.config or {}).get("threshold", DEFAULT_THRESHOLD))
        except (TypeError, ValueError):
            return DEFAULT_THRESHOLD


def load_reports(directory: Path | None = None) -> Reports:
    """Read every report in the artifacts folder; absent or unreadable ones come back as None."""
    directory = Path(directory or artifacts_directory())
    split = None
    split_path = directory / artifacts.SPLIT_FILE
    if split_path.is_file():
        try:
            split = pd.read_csv(split_path)
        except (OSError, ValueError, pd.errors.ParserError):
            LOGGER.warning("unreadable %s", split_path)
    return Reports(
        directory=directory,
        config=read_json_artifact(artifacts.CONFIG_FILE, directory),
        metrics=read_json_artifact(artifacts.METRICS_FILE, directory),
        history=read_json_artifact(artifacts.HISTORY_FILE, directory),
        split=split,
    )


# ---------------------------------------------------------------- sidebar


def render_sidebar(reports: Reports) -> float:
    """Model name, test accuracy and the "uncertain" threshold slider; returns the threshold."""
    with st.sidebar:
        st.subheader("Model")
        if reports.has_model:
            st.markdown(f"**{reports.model_name or 'unnamed model'}**")
            accuracy = (reports.test_metrics or {}).get("accuracy")
            if isinstance(accuracy, (int, float)):
                st.metric("Test accuracy (unseen speakers)", f"{accuracy:.1%}")
            else:
                st.caption("No test accuracy recorded.")
        else:
            st.warning("No trained model yet.")
        if THRESHOLD_KEY not in st.session_state:
            st.session_state[THRESHOLD_KEY] = reports.threshold
        return float(
            st.slider(
                "“Uncertain” below", min_value=0.0, max_value=1.0, step=0.01, key=THRESHOLD_KEY,
                help="When the top emotion's probability is below this, the result reads "
                "“uncertain”.",
            )
        )


def current_threshold() -> float:
    """The sidebar threshold (the config's default when the sidebar has not run)."""
    value = st.session_state.get(THRESHOLD_KEY)
    return float(value) if value is not None else load_reports().threshold


# ---------------------------------------------------------------- audio intake


def probe_duration(data: bytes) -> float | None:
    """Duration in seconds from the container header, without decoding; None when unknown."""
    import soundfile

    try:
        info = soundfile.info(io.BytesIO(data))
        if info.samplerate > 0 and info.frames > 0:
            return info.frames / info.samplerate
    except Exception:  # not a libsndfile format: ask FFmpeg
        pass
    try:
        import av

        with av.open(io.BytesIO(data), mode="r") as container:
            if container.duration:
                return container.duration / av.time_base
            for stream in container.streams.audio:
                if stream.duration and stream.time_base:
                    return float(stream.duration * stream.time_base)
    except Exception:
        return None
    return None


def read_upload(uploaded: Any) -> tuple[str, bytes]:
    """``(name, bytes)`` of a Streamlit ``UploadedFile`` (or any file-like object with a name)."""
    name = getattr(uploaded, "name", None) or "the audio"
    data = uploaded.getvalue() if hasattr(uploaded, "getvalue") else uploaded.read()
    return name, bytes(data)


def check_upload(name: str, data: bytes, max_seconds: float) -> None:
    """Reject what cannot be analysed before decoding it: empty, unknown type or too long."""
    if not data:
        raise AudioError(f"{name} is empty.")
    suffix = Path(name).suffix.lower()
    if suffix and suffix not in SUPPORTED_EXTENSIONS:
        raise AudioError(
            f"{name}: {suffix} files are not supported; use wav, flac, mp3, ogg, m4a or webm."
        )
    duration = probe_duration(data)
    if duration is not None and duration > max_seconds:
        raise AudioError(
            f"{name} is {duration:.0f} s long; the limit is {max_seconds:.0f} s. "
            "Trim it and try again."
        )


def with_threshold(prediction: Any, threshold: float) -> Any:
    """The same prediction judged against another "uncertain" threshold (no model call)."""
    return dataclasses.replace(
        prediction, threshold=float(threshold), uncertain=bool(prediction.confidence < threshold)
    )


def analyse_bytes(predictor: Any, name: str, data: bytes, threshold: float, cache_key: str) -> Any:
    """Classify uploaded or recorded audio; the result is kept per session so that moving the
    threshold or another widget does not run the model again. Raises :class:`AudioError`."""
    from ser_core.predictor import MAX_AUDIO_SECONDS

    digest = hashlib.sha1(data).hexdigest()
    cached = st.session_state.get(cache_key)
    if cached and cached[0] == digest and cached[1] is predictor:
        return with_threshold(cached[2], threshold)
    st.session_state.pop(cache_key, None)
    check_upload(name, data, MAX_AUDIO_SECONDS)
    source = io.BytesIO(data)
    source.name = name  # type: ignore[attr-defined]  # load_audio names the file in its messages
    prediction = predictor.predict_file(source, threshold=threshold)
    st.session_state[cache_key] = (digest, predictor, prediction)
    return prediction


def show_unexpected_error(what: str) -> None:
    """Log the current exception with its traceback and show a short message instead."""
    LOGGER.exception("unexpected error while %s", what)
    st.error(f"Something went wrong while {what}. The details were logged on the server.")


# ---------------------------------------------------------------- results


def prediction_json(prediction: Any, source_name: str, model_name: str | None) -> str:
    record = {"file": source_name, "model": model_name, **prediction.to_dict()}
    return json.dumps(record, indent=2)


def prediction_csv(prediction: Any) -> str:
    """One row for the whole clip, then one per model window."""
    emotions = list(prediction.probabilities)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["segment", "start_s", "end_s", "label", *emotions])
    writer.writerow(
        ["clip", 0.0, round(prediction.duration_s, 3), prediction.label,
         *(round(prediction.probabilities[e], 6) for e in emotions)]
    )
    for index, window in enumerate(prediction.windows, start=1):
        top = max(window.probabilities, key=window.probabilities.get)
        writer.writerow(
            [f"window {index}", round(window.start_s, 3), round(window.end_s, 3), top,
             *(round(window.probabilities[e], 6) for e in emotions)]
        )
    return buffer.getvalue()


def probability_table(probabilities: Mapping[str, float]) -> pd.DataFrame:
    """The exact numbers behind the bars, in the model's emotion order."""
    return pd.DataFrame(
        {"Emotion": list(probabilities), "Probability": [float(p) for p in probabilities.values()]}
    )


def headline(prediction: Any) -> None:
    """The verdict: the top emotion, or "uncertain" with the best guess."""
    if prediction.uncertain:
        st.warning(
            f"**Uncertain.** Best guess: **{prediction.top_emotion}** at "
            f"{prediction.confidence:.0%}, below the {prediction.threshold:.0%} threshold."
        )
    else:
        st.success(f"**{prediction.top_emotion.capitalize()}** — {prediction.confidence:.0%} confidence")


def render_probabilities(prediction: Any, key: str) -> None:
    """Bars per emotion (top one highlighted, threshold drawn) and the exact numbers."""
    from ser_core import plots

    st.altair_chart(
        plots.probability_chart(prediction.probabilities, prediction.threshold),
        width="stretch", key=f"{key}_bars",
    )
    with st.expander("Exact probabilities"):
        st.dataframe(
            probability_table(prediction.probabilities), hide_index=True, width="stretch",
            column_config={
                "Probability": st.column_config.ProgressColumn(
                    "Probability", min_value=0.0, max_value=1.0, format="percent"
                )
            },
            key=f"{key}_table",
        )


def render_prediction(prediction: Any, params: Any, source_name: str, model_name: str | None,
                      key: str) -> None:
    """Everything the Analyse page shows for one clip."""
    from ser_core import plots

    headline(prediction)
    st.caption(
        f"{source_name} · {prediction.duration_s:.1f} s · {len(prediction.windows)} window(s) "
        f"of {params.clip_seconds:g} s"
    )
    render_probabilities(prediction, key)

    if len(prediction.windows) > 1:
        st.subheader("Emotion over time")
        points = [((w.start_s + w.end_s) / 2, w.probabilities) for w in prediction.windows]
        st.altair_chart(plots.timeline_chart(points, list(prediction.probabilities)),
                        width="stretch", key=f"{key}_timeline")

    st.subheader("What the model hears")
    n_windows = len(prediction.features)
    index = 0
    if n_windows > 1:
        index = st.select_slider(
            "Window", options=list(range(n_windows)), key=f"{key}_window",
            format_func=lambda i: f"{i + 1}: {prediction.window_starts[i]:.1f}–"
                                  f"{prediction.window_starts[i] + params.clip_seconds:.1f} s",
        )
    if n_windows > 1:  # windows cut from a longer clip: time since the clip's start
        start, x_label = float(prediction.window_starts[index]), "Time in the clip (s)"
    else:  # a short clip, trimmed and centred in one zero-padded window
        start, x_label = 0.0, f"Time in the model's {params.clip_seconds:g} s window (s)"
    st.pyplot(
        plots.spectrogram_figure(prediction.features[index], params, start_s=start, x_label=x_label),
        width="stretch",
    )
    st.caption(
        f"Log-mel spectrogram, {params.n_mels} mel bands, {params.hop_length / params.sample_rate * 1000:.0f} ms "
        f"frames, in dB below the window's loudest bin (floor −{params.top_db:g} dB): the model's input."
    )

    stem = Path(source_name).stem or "recording"
    left, right = st.columns(2)
    left.download_button(
        "Download result (JSON)", prediction_json(prediction, source_name, model_name),
        file_name=f"{stem}_emotion.json", mime="application/json", key=f"{key}_json",
        on_click="ignore", icon=":material/download:",
    )
    right.download_button(
        "Download result (CSV)", prediction_csv(prediction), file_name=f"{stem}_emotion.csv",
        mime="text/csv", key=f"{key}_csv", on_click="ignore", icon=":material/download:",
    )


# ---------------------------------------------------------------- live page configuration


def preload_webrtc() -> bool:
    """Import streamlit-webrtc (and with it libsrtp) now; False when it is not installed.

    Must run before TensorFlow is imported: libsrtp's initialisation crashes the process when
    TensorFlow's native libraries are already loaded, while the reverse order works.
    """
    if webrtc_import_unsafe():
        return False
    try:
        import streamlit_webrtc  # noqa: F401
    except ImportError:
        return False
    return True


def has_browser_runtime() -> bool:
    """False in bare or simulated runs (``AppTest``), where ``webrtc_streamer`` cannot work:
    it needs the real Streamlit server's session manager to pair with a browser."""
    try:
        from streamlit.runtime import Runtime

        return Runtime.exists() and getattr(Runtime.instance(), "_session_mgr", None) is not None
    except Exception:
        return False


def webrtc_import_unsafe() -> bool:
    """True when importing streamlit-webrtc now would crash the process (see :func:`preload_webrtc`)."""
    import sys

    return "pylibsrtp" not in sys.modules and "tensorflow" in sys.modules


def rtc_configuration() -> tuple[dict[str, Any], str]:
    """WebRTC configuration and where it came from.

    ``$SER_ICE_SERVERS`` (a JSON list of RTCIceServer objects) wins over ``st.secrets["ice_servers"]``;
    with neither, no ICE servers at all: enough on localhost and the same LAN, and nothing is
    contacted outside. Raises ``ValueError`` for malformed configuration.
    """
    raw = os.environ.get("SER_ICE_SERVERS")
    if raw:
        try:
            servers = json.loads(raw)
        except ValueError as error:
            raise ValueError(f"SER_ICE_SERVERS is not valid JSON: {error}") from error
        source = "the SER_ICE_SERVERS environment variable"
    else:
        servers = None
        try:
            if "ice_servers" in st.secrets:
                servers = st.secrets["ice_servers"]
                servers = [dict(server) for server in servers]
        except FileNotFoundError:
            servers = None
        except Exception as error:  # unreadable secrets.toml
            raise ValueError(f"ice_servers in secrets.toml could not be read: {error}") from error
        source = "st.secrets[\"ice_servers\"]" if servers is not None else "none (localhost only)"
    if servers is None:
        servers = []
    if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s for s in servers):
        raise ValueError("ICE servers must be a list of objects, each with a \"urls\" key.")
    return {"iceServers": servers}, source
