"""The app's shared state: the entry-point fix for pages opened by URL, the cached predictor, the
reports in ``artifacts/``, the sidebar with the coverage setting, and the no-model and
unexpected-error messages.

The pages in ``pages/`` hold layout and widgets only. The other app modules:
:mod:`ser_core.app.intake` (uploaded and recorded audio in, a prediction out),
:mod:`ser_core.app.views` (showing a prediction, JSON/CSV exports),
:mod:`ser_core.app.webrtc_setup` (streamlit-webrtc import order, ICE servers) and
:mod:`ser_core.evaluation.cv_report` (cross-validation results).
"""

from __future__ import annotations

import gc
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from ser_core.app.front_end import model_front_end
from ser_core.app.safe_text import plain
from ser_core.inference import artifacts

from ser_core.evaluation import cv_report, loco_report
from ser_core.inference.artifacts import ModelNotFoundError, read_json_artifact
from ser_core.inference.emotion_sets import DEFAULT_COVERAGE
from ser_core.inference.predictor import DEFAULT_THRESHOLD, MAX_AUDIO_SECONDS
from ser_core.evaluation.member_specs import CHECKPOINTS, kept_checkpoint

LOGGER = logging.getLogger("ser_app")

THRESHOLD_KEY = "threshold"
COVERAGE_KEY = "coverage"  # the sidebar's setting: how often the answer's set should hold the true emotion

# The app's limits on uploads and recordings, as environment variables (see docs/usage.md, "Limits of the app"). The
# length limit defaults to the one the inference package applies; 25 MB holds a minute of
# uncompressed 48 kHz stereo with room to spare.
MAX_SECONDS_ENV = "SER_MAX_AUDIO_SECONDS"
MAX_MEGABYTES_ENV = "SER_MAX_UPLOAD_MB"
DEFAULT_MAX_MEGABYTES = 25.0


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


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class AudioLimits:
    """How long and how large an upload or a recording may be."""

    max_seconds: float
    max_megabytes: float

    @property
    def max_bytes(self) -> int:
        return int(self.max_megabytes * 1_000_000)  # decimal megabytes, as the file chip counts them

    def describe(self) -> str:
        """``"up to 60 s and 25 MB"``, as the page states it."""
        return f"up to {self.max_seconds:g} s and {self.max_megabytes:g} MB"


def _positive_setting(name: str, default: float) -> float:
    """A positive, finite number from the environment variable ``name``, or ``default``."""
    text = os.environ.get(name)
    if text is None:
        return float(default)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, not {text!r}.")
    return value


def _upload_door_megabytes() -> float:
    """Streamlit's ``server.maxUploadSize`` (the limit its uploader states), or 25 MB."""
    try:
        value = float(st.get_option("server.maxUploadSize"))
    except Exception:
        return DEFAULT_MAX_MEGABYTES
    return value if math.isfinite(value) and value > 0 else DEFAULT_MAX_MEGABYTES


def audio_limits() -> AudioLimits:
    """The limits in force: ``$SER_MAX_AUDIO_SECONDS`` (default: the inference package's
    ``MAX_AUDIO_SECONDS``) and ``$SER_MAX_UPLOAD_MB`` (default: ``server.maxUploadSize`` in
    ``.streamlit/config.toml``, 25, the one limit the uploader states). Raises ``ValueError``
    naming a bad value."""
    return AudioLimits(
        max_seconds=_positive_setting(MAX_SECONDS_ENV, MAX_AUDIO_SECONDS),
        max_megabytes=_positive_setting(MAX_MEGABYTES_ENV, _upload_door_megabytes()),
    )


def audio_limits_or_stop() -> AudioLimits:
    """The limits, or (a bad setting) a message naming it and the end of this page run."""
    try:
        return audio_limits()
    except ValueError as error:
        st.error(f"The app's settings are invalid: {error}")
        st.stop()


# Streamlit refuses a file over server.maxUploadSize in the browser and puts the reason in a
# visually hidden, screen-reader-only span of the red file chip (shown on hover). This shows it.
_SHOW_CHIP_REFUSAL_CSS = """<style>
[data-testid="stFileChip"] [role="alert"] {
  position: static; width: auto; height: auto; margin: 0 0.5rem; clip: auto; overflow: visible;
  white-space: normal; font-size: 0.8rem; color: #b42318;
}
</style>"""


def show_upload_refusals() -> None:
    """Make the reason Streamlit gives for refusing a file (over ``server.maxUploadSize``) visible."""
    st.html(_SHOW_CHIP_REFUSAL_CSS)


# ---------------------------------------------------------------- artifacts and the model


def artifacts_directory() -> Path:
    """The artifacts folder in use (``$SER_ARTIFACTS_DIR`` overrides ``artifacts/``)."""
    return Path(artifacts.artifacts_dir())


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
    from ser_core.inference.predictor import Predictor  # imports TensorFlow: only where a model is needed

    del stamp  # part of the cache key only
    LOGGER.info("loading the model from %s", directory)
    predictor = Predictor.from_artifacts(directory=directory)
    # Streamlit ends every script run, each of the Live page's once-a-second updates included, with
    # a full garbage collection, and a second one in keras.backend.clear_session(). With TensorFlow's
    # millions of objects loaded they held the interpreter for half of each second and starved the
    # WebRTC threads, which then dropped most of the live audio. Freezing what exists now (TensorFlow,
    # the model) takes it out of every later collection.
    gc.collect()
    gc.freeze()
    return predictor


def get_predictor():
    """The shared :class:`~ser_core.inference.predictor.Predictor`; raises :class:`ModelNotFoundError`.

    Keyed on the served model's own directory (``artifacts/current`` resolved): a newly published
    model is a new directory, so a new entry."""
    directory = artifacts.served_model_dir(artifacts_directory())
    return _load_predictor(str(directory.resolve()), _model_stamp(directory))


def _model_problem_text(error: Exception) -> tuple[str, str | None]:
    """The error's message without the train command (the page shows it once, as code) and,
    apart, the low-level reason it wraps (Keras's "File not found" for a damaged file)."""
    message = str(error)
    cause = str(error.__cause__) if error.__cause__ else None
    if cause and f"({cause})" in message:
        message = message.replace(f" ({cause})", "").replace(f"({cause})", "")
    command = re.escape(artifacts.TRAIN_COMMAND)
    message = re.sub(rf"(\s+with)?:?\s*`?{command}`?", r"\1 the command below", message)
    message = re.sub(rf"\s*\(add {re.escape(artifacts.RESTORE_OPTION)}[^)]*\)", "", message)  # the page's caption says it
    message = re.sub(r"\s+", " ", message).strip()
    if message and message[-1] not in ".!?":
        message += "."
    return message, cause


def show_model_missing(error: Exception | None = None) -> None:
    """Say plainly that there is no usable model (missing or damaged) and how to train one.

    The message is the error's own (it says which, and how to restore a damaged file when it
    knows); the train command is shown once, below it.
    """
    directory = artifacts_directory()
    model_exists = (artifacts.served_model_dir(directory) / artifacts.MODEL_FILE).is_file()
    if error is None:
        detail, cause = f"No trained model in {directory}.", None
    else:
        detail, cause = _model_problem_text(error)
    headline = "Unreadable model." if error is not None and model_exists else "No model available."
    st.error(f"**{headline}** {detail}")
    if cause:
        with st.expander("Technical details"):
            st.text(cause)
    st.markdown("Train one. It reads every corpus in `../shared/data`, or downloads them from Kaggle when "
                "there is none there (minutes once their features are cached, up to about half an hour the "
                "first time on 2 cores):")
    st.code(artifacts.TRAIN_COMMAND, language="bash")
    st.caption(f"Add `{artifacts.RESTORE_OPTION}` to serve the model the last training replaced instead. Then "
               "reload this page: the app picks the new model up without a restart.")


def predictor_or_stop():
    """The predictor, or (no usable model) the how-to-train message and the end of this page run."""
    try:
        return get_predictor()
    except ModelNotFoundError as error:
        show_model_missing(error)
    except Exception:  # a broken install, not a user error: log it, keep the page clean
        LOGGER.exception("loading the model failed")
        st.error(
            "**The model could not be loaded** because of an unexpected error (logged on the "
            "server). Retraining may help:"
        )
        st.code(artifacts.TRAIN_COMMAND, language="bash")
    st.stop()


@dataclass
class Reports:
    """The JSON/CSV reports written by ``train.py``; any of them may be missing.

    ``directory`` is the artifacts folder (its cross-validation tables of recipes); the model's own
    reports are read from ``model_directory``, the served model's directory (``artifacts/current``)."""

    directory: Path
    config: dict[str, Any] | None
    metrics: dict[str, Any] | None
    history: dict[str, Any] | None
    split: pd.DataFrame | None
    model_directory: Path | None = None

    @property
    def has_model(self) -> bool:
        return (Path(self.model_directory or self.directory) / artifacts.MODEL_FILE).is_file() and self.config is not None

    @property
    def model_name(self) -> str | None:
        if not self.config:
            return None
        return self.config.get("model_name") or self.config.get("arch")

    @property
    def arch(self) -> str | None:
        """The shipped model's architecture (``ser_cnn``, ...), when the config names it."""
        arch = (self.config or {}).get("arch")
        return arch if isinstance(arch, str) and arch else None

    @property
    def front_end(self) -> str:
        """``"whisper_embedding"`` or ``"log_mel"`` (:func:`ser_core.app.front_end.model_front_end`)."""
        return model_front_end(self.config)

    @property
    def test_metrics(self) -> dict[str, Any] | None:
        test = (self.metrics or {}).get("test")
        return test if isinstance(test, dict) else None

    @property
    def member_histories(self) -> list[dict[str, Any]]:
        """One training history per member of the shipped model (one for a single model)."""
        history = self.history or {}
        return [h for h in history.get("members") or [] if isinstance(h, dict)] or [history]

    def kept_weights(self, member_history: dict[str, Any]) -> str:
        """"best" or "last": which epoch's weights this member ships with."""
        legacy = ((self.config or {}).get("recipe") or {}).get("keep")  # one choice for all, older artifacts
        if legacy in CHECKPOINTS:
            return legacy
        return kept_checkpoint(str(member_history.get("member", "")))

    @property
    def threshold(self) -> float:
        """The config's cut-off for the slider; a damaged one (5, NaN, "high") falls back to the default,
        and the page says the model is damaged (``artifacts.load_model_and_config`` names the field)."""
        try:
            value = float((self.config or {}).get("threshold", DEFAULT_THRESHOLD))
        except (TypeError, ValueError):
            return DEFAULT_THRESHOLD
        return value if 0.0 <= value <= 1.0 else DEFAULT_THRESHOLD


def load_reports(directory: Path | None = None) -> Reports:
    """Read every report in the artifacts folder; absent or unreadable ones come back as None."""
    directory = Path(directory or artifacts_directory())
    model_directory = artifacts.served_model_dir(directory)  # resolved once: every report of one model
    split = None
    split_path = model_directory / artifacts.SPLIT_FILE
    if split_path.is_file():
        try:
            split = pd.read_csv(split_path)
        except (OSError, ValueError, pd.errors.ParserError):
            LOGGER.warning("unreadable %s", split_path)
    return Reports(
        directory=directory,
        config=read_json_artifact(artifacts.CONFIG_FILE, model_directory),
        metrics=read_json_artifact(artifacts.METRICS_FILE, model_directory),
        history=read_json_artifact(artifacts.HISTORY_FILE, model_directory),
        split=split,
        model_directory=model_directory,
    )


# ---------------------------------------------------------------- sidebar


def new_setup_accuracy(directory: Path | None = None) -> float | None:
    """The leave-one-corpus-out strict accuracy, when that report is there and readable."""
    directory = Path(directory or artifacts_directory())
    try:
        report = loco_report.load_loco_report(directory)
    except loco_report.LocoReportError:
        return None  # the Test results page says what is wrong with it
    return report.mean_of("strict_accuracy") if report else None


def render_sidebar(reports: Reports) -> float:
    """The model in plain words, how often its answer holds the true emotion, and the coverage setting;
    returns the coverage (0.8, 0.9 or 0.95). The figures for ML engineers sit behind an expander."""
    from ser_core.app import words

    with st.sidebar:
        st.subheader("Model")
        if reports.has_model:
            st.markdown(words.model_in_plain_words(reports.config))
            if COVERAGE_KEY not in st.session_state:
                st.session_state[COVERAGE_KEY] = DEFAULT_COVERAGE
            coverage = float(st.session_state[COVERAGE_KEY])
            sentence = words.sidebar_coverage(reports.config, coverage)
            if sentence:
                st.markdown(sentence)
            with st.expander("Details for ML engineers"):
                st.caption(f"{reports.model_name or 'unnamed model'}.")
                accuracy = (reports.test_metrics or {}).get("accuracy")
                cross_validated = cv_report.shipped_accuracy(reports.directory, reports.arch)
                new_setup = new_setup_accuracy(reports.directory)
                if new_setup is not None:
                    st.caption(f"Top emotion right {new_setup:.0%} of the time on a corpus left out of training "
                               "(mean over the held-out corpora, before adapting; Test results page).")
                elif isinstance(accuracy, (int, float)):
                    st.caption(f"Test accuracy on unseen speakers: {accuracy:.1%}.")
                elif cross_validated is not None:
                    st.caption(f"Cross-validated accuracy on unseen speakers: {cross_validated:.1%}.")
        else:
            st.warning("No trained model yet.")
        if COVERAGE_KEY not in st.session_state:
            st.session_state[COVERAGE_KEY] = DEFAULT_COVERAGE
        return float(st.radio(
            "The answer should hold the true emotion", options=list(words.COVERAGE_CHOICES),
            format_func=words.coverage_name, key=COVERAGE_KEY, horizontal=True,
            help="Higher: the answer is wrong less often, but names two or more emotions more often. "
                 "Lower: more single-emotion answers, more of them wrong.",
        ))


def current_coverage() -> float:
    """The sidebar's coverage setting (0.9 when the sidebar has not run)."""
    value = st.session_state.get(COVERAGE_KEY)
    return float(value) if value is not None else DEFAULT_COVERAGE


def current_threshold() -> float:
    """The model's "uncertain" cut-off (kept in the JSON result; the page answers with sets)."""
    return load_reports().threshold


# ---------------------------------------------------------------- messages


def show_unexpected_error(what: str) -> None:
    """Log the current exception with its traceback and show a short message instead."""
    LOGGER.exception("unexpected error while %s", what)
    st.error(f"Something went wrong while {plain(what)}. The details were logged on the server.")
