"""Issue 23, items 7-13: bad settings and files a hostile tester tried.

7 a small file holding hours of audio, 8 file names written as Markdown, 9 a damaged config.json,
10 weights changed in place, 11 a pipe or a device as input, 12 a FLAC cut short, 13 the words of
some messages (symlink loops, unnamed "no speech" notes, the missing-weights advice, terminal
escape sequences in names). Item 6 is in ``test_voice_check.py``; the browser half of item 8 in
``test_e2e_names.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import audio_factory
from app_helpers import APP_FILE, REPO_ROOT, speech_like, wav_bytes
from ser_core.inference.artifacts import ModelDamagedError, load_model_and_config
from ser_core.inference.audio import AudioError, load_audio, open_audio_stream

SR = 16_000
SHIPPED = REPO_ROOT / "artifacts"
TIMEOUT = 60


# ------------------------------------------------------------------ 7. memory bomb


def _peak_memory_of_loading(path: Path, max_seconds: float) -> tuple[float, str]:
    """Peak resident memory (MB above the imports) of a fresh process running load_audio, and its answer."""
    from benchmarks.decode_memory import PROBE

    out = subprocess.run([sys.executable, "-c", PROBE, str(REPO_ROOT), str(path), str(max_seconds)],
                         capture_output=True, text=True, timeout=300, check=True)
    memory, _, answer = out.stdout.strip().split("\t")
    return float(memory), answer


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 0.3 MB WebM holding 20 minutes of constant FLAC audio, its Duration element blanked."""
    pytest.importorskip("av")
    from benchmarks.decode_memory import constant_webm

    path = constant_webm(tmp_path_factory.mktemp("bomb") / "bomb.webm", 1200.0)
    assert path.stat().st_size < 1_000_000
    return path


@pytest.mark.parametrize("limit", [60.0, 600.0], ids=["app-upload", "predict-adapt"])
def test_a_small_file_holding_hours_is_decoded_only_up_to_the_limit(bomb: Path, limit: float) -> None:
    """Was: decoded whole (20 min here: +1.1 GB for 100 min in benchmarks/decode_memory.py), then refused."""
    memory, answer = _peak_memory_of_loading(bomb, limit)
    assert answer.startswith("refused: ") and f"the limit is {limit:.0f} s" in answer, answer
    assert memory < 60, f"decoding peaked {memory:.0f} MB above the imports"


def test_the_app_refuses_it_without_decoding_it_whole(bomb: Path) -> None:
    from ser_core.app.intake import decode_bytes
    from ser_core.app.support import AudioLimits

    with pytest.raises(AudioError, match="the limit is 60 s"):
        decode_bytes("bomb.webm", bomb.read_bytes(), SR, AudioLimits(max_seconds=60.0, max_megabytes=25.0))


def test_predict_adapt_refuses_a_file_over_its_limit_and_says_what_to_do(bomb: Path, capsys) -> None:
    from ser_core.inference import predict_cli

    class Measuring:  # what --adapt uses of a Whisper predictor; the file never reaches it
        supports_adaptation, supports_self_training, threshold = True, False, 0.5
        params = type("Params", (), {"sample_rate": SR})()

        def adaptation_sample(self, wave, rate):
            raise AssertionError("the file was decoded")

        def self_trains(self, n):
            return False

        def batch_probabilities(self, samples, adaptation, self_train=False):
            return []

    args = argparse.Namespace(files=[bomb], self_train=False, threshold=None, json=False)
    assert predict_cli._adapted_batch(Measuring(), args) == 1
    error = capsys.readouterr().err
    assert "bomb.webm" in error and "the limit is 600 s" in error and "without --adapt" in error


# ------------------------------------------------------------------ 9. a damaged config.json


def _broken_copy(tmp_path: Path, change) -> Path:
    folder = tmp_path / "artifacts"
    folder.mkdir()
    for name in ("model.keras", "config.json"):
        shutil.copy(SHIPPED / name, folder / name)
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _set(key: str, value):
    return lambda config: config.__setitem__(key, value)


def _set_in(path: tuple[str, ...], value):
    def change(config):
        target = config
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value(target[path[-1]]) if callable(value) else value
    return change


BROKEN_CONFIGS = {
    "temperature-hot": (_set("temperature", "hot"), "temperature"),
    "temperature-zero": (_set("temperature", 0), "temperature"),
    "temperature-nan": (_set("temperature", float("nan")), "temperature"),
    "threshold-5": (_set("threshold", 5), "threshold"),
    "threshold-nan": (_set("threshold", float("nan")), "threshold"),
    "threshold-high": (_set("threshold", "high"), "threshold"),
    "emotions-null": (_set("emotions", None), "emotions"),
    "mean-too-short": (_set_in(("standardisation", "default", "mean"), lambda mean: mean[:-1]),
                       "standardisation.default.mean"),
    "layers-99": (_set_in(("recipe", "layers"), [99]), "recipe.layers"),
    "std-all-zero": (_set_in(("standardisation", "default", "std"), lambda std: [0.0] * len(std)),
                     "standardisation.default.std"),
}


@pytest.fixture()
def shipped_whisper_model():
    config = json.loads((SHIPPED / "config.json").read_text()) if (SHIPPED / "config.json").is_file() else {}
    if config.get("kind") != "whisper_embedding_head":
        pytest.skip("the committed artifacts hold no Whisper model")


@pytest.mark.parametrize("variant", list(BROKEN_CONFIGS))
def test_a_damaged_config_is_refused_naming_the_field(shipped_whisper_model, tmp_path: Path, variant: str) -> None:
    change, field = BROKEN_CONFIGS[variant]
    folder = _broken_copy(tmp_path, change)
    with pytest.raises(ModelDamagedError) as caught:
        load_model_and_config(folder)
    assert field in str(caught.value) and "config.json" in str(caught.value)


def test_nan_weights_are_refused(shipped_whisper_model, tmp_path: Path) -> None:
    folder = _broken_copy(tmp_path, lambda config: None)
    with _keras_weights(folder / "model.keras") as weights:
        weights[...] = np.nan
    with pytest.raises(ModelDamagedError, match="non-finite"):
        load_model_and_config(folder)


class _keras_weights:
    """The first weight array inside a ``.keras`` zip, writable; the zip rewritten on exit."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self):
        import io
        import zipfile

        import h5py

        with zipfile.ZipFile(self.path) as archive:
            self.members = {name: archive.read(name) for name in archive.namelist()}
        self.buffer = io.BytesIO(self.members["model.weights.h5"])
        self.file = h5py.File(self.buffer, "r+")
        found: list = []
        self.file.visititems(lambda name, item: found.append(item) if isinstance(item, h5py.Dataset) else None)
        return found[0]

    def __exit__(self, *exc) -> None:
        import zipfile

        self.file.close()
        self.members["model.weights.h5"] = self.buffer.getvalue()
        with zipfile.ZipFile(self.path, "w") as archive:
            for name, data in self.members.items():
                archive.writestr(name, data)


def test_predict_with_a_damaged_config_says_so_without_a_traceback(shipped_whisper_model, tmp_path: Path,
                                                                    capsys) -> None:
    from ser_core.inference import predict_cli

    folder = _broken_copy(tmp_path, _set("temperature", float("nan")))
    clip = audio_factory.write_audio(tmp_path / "a.wav", speech_like(2.0))
    assert predict_cli.main([str(clip), "--artifacts", str(folder)]) == 2
    out = capsys.readouterr()
    assert "temperature" in out.err and "Traceback" not in out.err and "nan %" not in out.out


@pytest.mark.parametrize("page", ["pages/analyse.py", "pages/adapt.py", "pages/live.py", "pages/test_results.py"])
def test_every_page_says_the_model_is_damaged_instead_of_an_exception_box(
        shipped_whisper_model, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, page: str) -> None:
    """A threshold of 5 in config.json put a Streamlit exception box on every page (the sidebar's slider)."""
    from test_app_pages import open_app, page_text

    folder = _broken_copy(tmp_path, _set("threshold", 5))
    app = open_app(monkeypatch, folder, page)
    assert not app.exception, [e.value for e in app.exception]
    if page != "pages/test_results.py":  # the reports pages read the reports, not the model
        assert "threshold must be a number from 0 to 1, not 5" in page_text(app), page_text(app)


def test_a_valid_config_with_extra_optional_fields_still_loads(shipped_whisper_model, tmp_path: Path) -> None:
    folder = _broken_copy(tmp_path, _set("conformal", {"alpha": 0.1, "threshold": 0.4}))
    model, config = load_model_and_config(folder)
    assert config["conformal"]["alpha"] == 0.1


# ------------------------------------------------------------------ 10. weights changed in place


def test_weights_rewritten_in_place_with_size_and_mtime_kept_are_hashed_again(tmp_path: Path) -> None:
    import hashlib

    from ser_core.inference.whisper_weights import WhisperWeightsHashError, verify_sha256

    weights, cache = tmp_path / "model.bin", tmp_path / "cache.json"
    weights.write_bytes(b"\x01" * 4096)
    expected = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert verify_sha256([weights], expected, cache_path=cache) == expected
    before = weights.stat()
    with open(weights, "r+b") as handle:  # same inode, same size
        handle.write(b"\x02" * 16)
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert weights.stat().st_size == before.st_size and weights.stat().st_mtime_ns == before.st_mtime_ns
    with pytest.raises(WhisperWeightsHashError):
        verify_sha256([weights], expected, cache_path=cache)


# ------------------------------------------------------------------ 11. not a regular file


PROBE_INPUT = """
import sys
sys.path.insert(0, sys.argv[1])
from ser_core.inference.audio import AudioError, load_audio, open_audio_stream
for opener in (lambda p: load_audio(p, 16000), lambda p: list(open_audio_stream(p, 16000))):
    try:
        opener(sys.argv[2])
        print("decoded")
    except AudioError as error:
        print(f"refused: {error}")
"""


def _answers_for(path: str) -> list[str]:
    """What load_audio and open_audio_stream say, in a process that is killed if it hangs."""
    try:
        out = subprocess.run([sys.executable, "-c", PROBE_INPUT, str(REPO_ROOT), path],
                             capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading {path} hung")
    return out.stdout.strip().splitlines()


def test_a_fifo_is_refused_by_name_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    answers = _answers_for(str(fifo))
    assert len(answers) == 2 and all("pipe.wav is a pipe (FIFO), not an audio file" in a for a in answers), answers


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused_by_name_not_called_empty(device: str) -> None:
    if not Path(device).exists():
        pytest.skip(f"no {device}")
    answers = _answers_for(device)
    assert len(answers) == 2 and all(f"{Path(device).name} is a device, not an audio file" in a for a in answers), answers


# ------------------------------------------------------------------ 12. a FLAC cut short


def test_a_flac_cut_to_its_first_third_gives_the_audio_before_the_cut(tmp_path: Path) -> None:
    whole = audio_factory.encode(speech_like(3.0), SR, ".flac")
    path = tmp_path / "cut.flac"
    path.write_bytes(whole[: len(whole) // 3])
    wave = load_audio(path, SR)
    assert 0.5 * SR < wave.size <= 1.2 * SR and np.all(np.isfinite(wave))
    stream = open_audio_stream(path, SR)
    assert sum(block.size for block in stream) == wave.size and stream.cut_short


def test_the_app_analyses_a_cut_flac_like_a_cut_wav(monkeypatch: pytest.MonkeyPatch, model_artifacts: Path) -> None:
    from test_app_pages import assert_clean, open_app

    whole = audio_factory.encode(speech_like(6.0), SR, ".flac")
    app = open_app(monkeypatch, model_artifacts)
    app.file_uploader[0].set_value(("cut.flac", whole[: len(whole) // 3], "audio/flac"))
    app.run()
    assert_clean(app)
    assert not app.error, [e.value for e in app.error]
    assert app.get("audio")


# ------------------------------------------------------------------ 13. words


def test_a_symlink_loop_is_called_a_loop(tmp_path: Path) -> None:
    first, second = tmp_path / "a.wav", tmp_path / "b.wav"
    first.symlink_to(second)
    second.symlink_to(first)
    for opener in (lambda: load_audio(first, SR), lambda: open_audio_stream(first, SR)):
        with pytest.raises(AudioError, match=r"a\.wav is a symbolic link that leads back to itself"):
            opener()


def test_a_dangling_link_says_where_it_points(tmp_path: Path) -> None:
    link = tmp_path / "clip.wav"
    link.symlink_to(tmp_path / "gone.wav")
    with pytest.raises(AudioError, match=r"clip\.wav is a link to .*gone\.wav, which does not exist"):
        load_audio(link, SR)


def test_the_missing_weights_message_does_not_send_the_user_online_when_downloading_is_off(monkeypatch) -> None:
    from ser_core.inference import whisper_weights

    monkeypatch.delenv(whisper_weights.ENV_DIR, raising=False)
    monkeypatch.setattr(whisper_weights, "_from_packages", lambda model: (None, "packages: not installed"))
    with pytest.raises(whisper_weights.WhisperWeightsNotFoundError) as caught:
        whisper_weights.locate_weights("base", allow_download=False)
    message = str(caught.value)
    assert "connect to the internet" not in message and "does not download" in message
    assert whisper_weights.ENV_DIR in message


def test_escape_sequences_in_file_names_are_not_sent_to_the_terminal(tmp_path: Path, capsys) -> None:
    from ser_core.inference import predict_cli

    name = tmp_path / "\x1b[2J\x1b[31mred.wav"
    assert predict_cli.main([str(name), "--artifacts", str(SHIPPED)]) in (1, 2)
    out = capsys.readouterr()
    assert "\x1b" not in out.err + out.out
    if "red.wav" in out.err:
        assert "\\x1b[2J" in out.err


def test_the_adapt_page_names_the_file_that_held_no_speech(whisper_app) -> None:  # noqa: F811
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(APP_FILE), default_timeout=TIMEOUT).run()
    app.switch_page("pages/adapt.py").run()
    app.file_uploader[0].set_value([("quiet_kitchen.wav", wav_bytes(np.zeros(3 * SR, np.float32)), "audio/wav"),
                                    ("me.wav", wav_bytes(speech_like(3.0)), "audio/wav")]).run()
    assert not app.exception, [e.value for e in app.exception]
    notes = [box.value for box in app.info]
    assert any("quiet_kitchen.wav" in note and "No speech" in note for note in notes), notes


# ------------------------------------------------------------------ 8. names as text (the app's half)


def test_user_supplied_names_are_escaped_wherever_a_page_shows_them(whisper_app) -> None:  # noqa: F811
    from streamlit.testing.v1 import AppTest

    link = "[Your session expired - log in again](http://127.0.0.1:9/phish).wav"
    image = "![x](http://127.0.0.1:9/t.png).wav"
    app = AppTest.from_file(str(APP_FILE), default_timeout=TIMEOUT).run()
    app.switch_page("pages/adapt.py").run()
    app.file_uploader[0].set_value([(link, wav_bytes(speech_like(3.0)), "audio/wav"),
                                    (image, wav_bytes(np.zeros(3 * SR, np.float32)), "audio/wav")]).run()
    assert not app.exception, [e.value for e in app.exception]
    shown = [box.value for box in [*app.success, *app.info, *app.error]]
    assert any("session expired" in text for text in shown) and any("t.png" in text for text in shown), shown
    for text in shown:  # every bracket escaped: no link, no image
        assert "[" not in text.replace("\\[", "") and "]" not in text.replace("\\]", ""), text


def test_plain_shows_markdown_as_written() -> None:
    from ser_core.app.safe_text import plain

    assert plain("[a](b).wav") == "\\[a\\](b).wav"
    assert plain("![x](y).wav") == "\\!\\[x\\](y).wav"
    assert plain("http://x/y") == "http\\:\u200b//x/y"  # not a bare link either
    assert plain("www.x.org me@x.org") == "www\u200b.x.org me\u200b@x.org"
    assert plain("# 1. <b>_a_ :red[b]") == "\\# 1. \\<b\\>\\_a\\_ \\:red\\[b\\]"
    assert plain("1. one.wav") == "1\\. one.wav"
    assert plain("quiet_kitchen.wav: no speech") == "quiet_kitchen.wav: no speech"  # plain prose stays as it is
    assert plain("two\nlines\x1b[31m") == "two lines \\[31m"
    assert plain("Ünïcode clip 1") == "Ünïcode clip 1"


from test_adapt import whisper_app  # noqa: E402,F401  (fixture)
