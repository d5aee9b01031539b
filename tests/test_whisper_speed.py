"""The faster encoder paths: stopping after the head's highest layer, and int8 blocks (issue 21, speed).

Most tests build a tiny Whisper-shaped encoder from random weights (no download, a second each);
those marked with the real weights skip cleanly without them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import audio_factory
from ser_core.data import embedding_cache
from ser_core.inference import artifacts, embedding, whisper_front, whisper_int8
from ser_core.inference.embedding import embed_waveform
from ser_core.inference.params import EmbeddingParams
from ser_core.inference.whisper_encoder import WhisperEncoder

REAL_CLIP = (Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess" / "Actor_01"
             / "03-01-05-02-01-01-01.flac")


def _tiny_variables(n_layers: int = 3, width: int = 64, heads: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """A Whisper-shaped encoder (CTranslate2 variable names) with random weights."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape, scale=0.08: rng.normal(0, scale, shape).astype(np.float32)  # noqa: E731
    variables = {
        "encoder/num_heads": np.array(heads, np.int32),
        "encoder/conv1/weight": normal(width, 80, 3), "encoder/conv1/bias": normal(width),
        "encoder/conv2/weight": normal(width, width, 3), "encoder/conv2/bias": normal(width),
        "encoder/layer_norm/gamma": 1 + normal(width), "encoder/layer_norm/beta": normal(width),
    }
    for i in range(n_layers):
        p = f"encoder/layer_{i}"
        variables.update({
            f"{p}/self_attention/layer_norm/gamma": 1 + normal(width),
            f"{p}/self_attention/layer_norm/beta": normal(width),
            f"{p}/self_attention/linear_0/weight": normal(3 * width, width, scale=0.15),
            f"{p}/self_attention/linear_0/bias": normal(3 * width),
            f"{p}/self_attention/linear_1/weight": normal(width, width, scale=0.15),
            f"{p}/self_attention/linear_1/bias": normal(width),
            f"{p}/ffn/layer_norm/gamma": 1 + normal(width), f"{p}/ffn/layer_norm/beta": normal(width),
            f"{p}/ffn/linear_0/weight": normal(4 * width, width, scale=0.15),
            f"{p}/ffn/linear_0/bias": normal(4 * width),
            f"{p}/ffn/linear_1/weight": normal(width, 4 * width, scale=0.1), f"{p}/ffn/linear_1/bias": normal(width),
        })
    return variables


@pytest.fixture(scope="module")
def tiny() -> WhisperEncoder:
    return WhisperEncoder(_tiny_variables())


@pytest.fixture(scope="module")
def mel(tiny) -> np.ndarray:
    return tiny.log_mel(audio_factory.emotional_speech("angry", seconds=2.0, seed=1))


@pytest.fixture()
def onnx_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(whisper_int8.ENV_ONNX_CACHE, str(tmp_path / "onnx"))
    monkeypatch.setattr(whisper_int8, "_LOADED", {})
    return tmp_path / "onnx"


@pytest.fixture()
def tiny_as_pinned(tiny, monkeypatch):
    """``embedding.load_encoder`` answers with the tiny encoder (the per-process caches emptied around it)."""
    monkeypatch.setattr(embedding, "load_encoder", lambda model="base", weights_sha256=None: tiny)
    for cached in (whisper_front.front_end_encoder, whisper_front.serving_encoder):
        cached.cache_clear()
    yield tiny
    for cached in (whisper_front.front_end_encoder, whisper_front.serving_encoder):
        cached.cache_clear()


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# ------------------------------------------------------------------------------- early stop


def test_stopping_early_gives_the_lower_layers_bit_for_bit(tiny, mel):
    full = tiny.forward(mel)
    for n_blocks in (1, 2):
        stopped = tiny.variant(n_blocks=n_blocks).forward(mel)
        assert stopped.hidden_states.shape[0] == n_blocks + 1 and stopped.final is None
        np.testing.assert_array_equal(stopped.hidden_states, full.hidden_states[: n_blocks + 1])
        np.testing.assert_array_equal(tiny.forward(mel, n_blocks).hidden_states, full.hidden_states[: n_blocks + 1])
    assert full.final is not None and full.hidden_states.shape[0] == tiny.n_layers + 1
    with pytest.raises(ValueError, match="n_blocks"):
        tiny.variant(n_blocks=2).forward(mel, 3)  # a stopped variant cannot run further
    with pytest.raises(ValueError, match="n_blocks"):
        tiny.variant(n_blocks=0)


def test_the_served_front_end_stops_after_the_heads_highest_layer(tiny_as_pinned):
    params = EmbeddingParams()
    wave = audio_factory.with_silence(audio_factory.emotional_speech("sad", seconds=1.5, seed=2), 0.3, 0.3)
    embedded = whisper_front.embed_speech(wave, params, (1, 2))
    assert whisper_front.serving_encoder(params, (1, 2)).n_blocks == 2
    assert embedded.pooled.shape[0] == 3
    np.testing.assert_array_equal(embedded.pooled, embed_waveform(wave, params, encoder=tiny_as_pinned).pooled[:3])


# ------------------------------------------------------------------------------- int8


def test_the_onnx_graph_is_the_numpy_encoder(tiny, mel):
    """The float32 graph before quantisation computes what the numpy encoder computes."""
    import onnxruntime

    session = onnxruntime.InferenceSession(whisper_int8.block_graph(tiny, 3).SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    hidden = session.run(None, {"mel": mel})[0]
    np.testing.assert_allclose(hidden, tiny.forward(mel).hidden_states, rtol=1e-4, atol=1e-4)


def test_int8_blocks_are_close_to_float32_and_cached_on_disk(tiny, mel, onnx_cache):
    reference = tiny.forward(mel).hidden_states
    quantised = tiny.variant(n_blocks=2, precision="int8")
    assert quantised.precision == "int8" and tiny.precision == "float32"
    hidden = quantised.forward(mel).hidden_states
    assert hidden.shape == (3, *reference.shape[1:])
    np.testing.assert_allclose(hidden[0], reference[0], rtol=1e-5, atol=1e-5)  # the stem stays float32
    for layer in (1, 2):
        assert 0 < _relative(hidden[layer].mean(axis=0), reference[layer].mean(axis=0)) < 0.03
    assert len(list(onnx_cache.glob("whisper-*-2-*.int8.onnx"))) == 1
    whisper_int8._LOADED.clear()
    again = tiny.variant(n_blocks=2, precision="int8").forward(mel).hidden_states  # read back from disk
    np.testing.assert_array_equal(again, hidden)


def test_an_unwritable_cache_still_gives_the_int8_graph(tiny, mel, tmp_path, monkeypatch):
    monkeypatch.setattr(whisper_int8, "_LOADED", {})
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")  # mkdir under it fails
    hidden = tiny.variant(n_blocks=1, precision="int8", cache_dir=not_a_folder / "onnx").forward(mel).hidden_states
    assert hidden.shape[0] == 2
    assert _relative(hidden[1].mean(axis=0), tiny.forward(mel).hidden_states[1].mean(axis=0)) < 0.03


# ------------------------------------------------------------------------------- the setting


def test_the_precision_is_part_of_the_front_end_record():
    assert EmbeddingParams.from_dict({k: v for k, v in EmbeddingParams().to_dict().items()
                                      if k != "encoder_precision"}).encoder_precision == "float32"
    int8 = EmbeddingParams(encoder_precision="int8")
    assert EmbeddingParams.from_dict(int8.to_dict()) == int8
    float32 = EmbeddingParams(encoder_precision="float32")
    assert embedding_cache.front_end_key(int8) != embedding_cache.front_end_key(float32)
    with pytest.raises(ValueError, match="encoder_precision"):
        EmbeddingParams(encoder_precision="float16")


def test_a_models_config_chooses_its_encoder(tiny_as_pinned, onnx_cache):
    config = {"front_end": EmbeddingParams().to_dict(), "recipe": {"layers": [1, 2]}}
    served = artifacts.load_whisper_encoder(config)  # nothing said: the serving default
    assert (served.precision, served.n_blocks) == (whisper_front.DEFAULT_SERVING_PRECISION, 2)
    config["serving"] = {"encoder_precision": "float32"}  # int8 off
    served = artifacts.load_whisper_encoder(config)
    assert (served.precision, served.n_blocks) == ("float32", 2)
    config["serving"] = {"encoder_precision": "int8"}
    assert artifacts.load_whisper_encoder(config).precision == "int8"
    trained_in_int8 = {"front_end": EmbeddingParams(encoder_precision="int8").to_dict(), "recipe": {"layers": [2]}}
    assert whisper_front.serving_precision(trained_in_int8) == "int8"


def test_a_bad_serving_precision_calls_the_config_damaged(tmp_path):
    shipped = artifacts.ARTIFACTS_DIR
    if not (shipped / "config.json").is_file():
        pytest.skip("no shipped model in artifacts/")
    shutil.copy(shipped / artifacts.MODEL_FILE, tmp_path / artifacts.MODEL_FILE)
    config = json.loads((shipped / "config.json").read_text())
    config["serving"] = {"encoder_precision": "float16"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(artifacts.ModelDamagedError, match="float16"):
        artifacts.load_model_and_config(tmp_path)


def test_without_a_usable_int8_graph_the_model_is_served_in_float32(tiny_as_pinned, monkeypatch, caplog):
    def unavailable(*args, **kwargs):
        raise ImportError("No module named 'onnx'")

    monkeypatch.setattr(whisper_int8, "int8_blocks", unavailable)
    config = {"front_end": EmbeddingParams().to_dict(), "recipe": {"layers": [1, 2]},
              "serving": {"encoder_precision": "int8"}}
    served = artifacts.load_whisper_encoder(config)
    assert (served.precision, served.n_blocks) == ("float32", 2)
    assert "serving float32" in caplog.text


def test_int8_embeddings_are_cached_apart_and_computed_in_int8(tiny_as_pinned, onnx_cache, tmp_path):
    import soundfile

    wave = audio_factory.with_silence(audio_factory.emotional_speech("happy", seconds=1.5, seed=3), 0.3, 0.3)
    path = tmp_path / "clip.wav"
    soundfile.write(path, wave, 16_000)
    float32, int8 = EmbeddingParams(encoder_precision="float32"), EmbeddingParams(encoder_precision="int8")
    cache = tmp_path / "cache"
    rows = {params.encoder_precision: embedding_cache.embed_files([path], params, cache_dir=cache)[0][0]
            for params in (float32, int8)}
    assert len([folder for folder in cache.iterdir() if folder.is_dir()]) == 2
    expected = embed_waveform(embedding_cache.load_audio(str(path), 16_000), int8,
                              encoder=tiny_as_pinned.variant(precision="int8")).pooled
    np.testing.assert_allclose(rows["int8"], expected, rtol=1e-6)
    assert not np.allclose(rows["int8"], rows["float32"], rtol=1e-6)


# ------------------------------------------------------------------------------- the real model


@pytest.fixture(scope="module")
def real_predictor():
    from ser_core.inference.predictor import ModelNotFoundError, Predictor

    if not REAL_CLIP.is_file():
        pytest.skip("the shared RAVDESS data is not here")
    try:
        predictor = Predictor.from_artifacts()
    except ModelNotFoundError as error:
        pytest.skip(str(error))
    if predictor.kind != "whisper_embedding_head":
        pytest.skip("the shipped model is not a Whisper model")
    return predictor


def test_the_shipped_model_answers_the_same_with_the_early_stop(real_predictor):
    from ser_core.inference.predictor import Predictor

    full = embedding.load_encoder(real_predictor.front_end.model, real_predictor.front_end.weights_sha256)
    assert real_predictor._encoder.n_blocks == max(real_predictor.layers) < full.n_layers
    assert real_predictor._encoder.precision == whisper_front.serving_precision(real_predictor.config)

    class AllBlocks:  # the encoder as served before: every block, whatever the head reads
        log_mel = staticmethod(full.log_mel)

        def forward(self, mel, n_blocks=None):
            return full.forward(mel)

    stopped = full.variant(n_blocks=max(real_predictor.layers))
    before = Predictor(real_predictor.model, real_predictor.config, encoder=AllBlocks()).predict_file(str(REAL_CLIP))
    after = Predictor(real_predictor.model, real_predictor.config, encoder=stopped).predict_file(str(REAL_CLIP))
    assert after.probabilities == before.probabilities
    assert [w.probabilities for w in after.windows] == [w.probabilities for w in before.windows]


def test_the_real_int8_encoder_is_close_to_float32_on_a_clip(real_predictor, onnx_cache):
    from ser_core.inference.audio import load_audio
    from ser_core.inference.predictor import Predictor

    full = embedding.load_encoder(real_predictor.front_end.model, real_predictor.front_end.weights_sha256)
    mel = full.log_mel(load_audio(str(REAL_CLIP), 16_000)[:48_000])
    reference = full.forward(mel, 4).hidden_states
    quantised = full.variant(n_blocks=4, precision="int8")
    hidden = quantised.forward(mel).hidden_states
    for layer in range(1, 5):
        assert _relative(hidden[layer].mean(axis=0), reference[layer].mean(axis=0)) < 0.04
    int8 = Predictor(real_predictor.model, real_predictor.config, encoder=quantised).predict_file(str(REAL_CLIP))
    float32 = Predictor(real_predictor.model, real_predictor.config, encoder=full).predict_file(str(REAL_CLIP))
    gap = max(abs(int8.probabilities[e] - float32.probabilities[e]) for e in float32.probabilities)
    assert gap < 0.05
