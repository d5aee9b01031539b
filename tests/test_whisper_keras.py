"""The Keras Whisper encoder, the tuned model and its numpy twin: same numbers on the same input."""

from __future__ import annotations


import numpy as np
import pytest

from ser_core.inference.embedding import embed_waveform, load_encoder
from ser_core.inference.params import EmbeddingParams
from ser_core.inference.whisper_weights import WhisperWeightsNotFoundError, resolve_weights

keras = pytest.importorskip("keras")

from ser_core.data.frame_cache import cached_frames, speech_frames  # noqa: E402
from ser_core.inference.tuned_head import TunedHead, pinned_block_weights, softmax  # noqa: E402
from ser_core.training.tuned_fit import ClipFrames, fit_end_to_end, fit_tuned  # noqa: E402
from ser_core.training.whisper_keras import TunedRecipe, build_encoder, build_tuned_model, export_tuned  # noqa: E402


@pytest.fixture(scope="module")
def encoder():
    try:
        resolve_weights("base", allow_download=False)
    except WhisperWeightsNotFoundError as exc:
        pytest.skip(str(exc))
    return load_encoder()


@pytest.fixture(scope="module")
def pinned(encoder):
    return pinned_block_weights((3, 4))


def _voice(seconds: float, pitch: float = 180.0, seed: int = 0) -> np.ndarray:
    """A gliding harmonic tone with noise: enough structure that every layer's frames vary."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16_000)) / 16_000
    f0 = pitch * (1 + 0.15 * np.sin(2 * np.pi * 1.3 * t))
    phase = 2 * np.pi * np.cumsum(f0) / 16_000
    wave = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    return (0.1 * wave + 0.005 * rng.normal(size=t.size)).astype(np.float32)


def test_keras_encoder_reproduces_every_numpy_layer_in_a_padded_batch(encoder):
    mel = encoder.log_mel(_voice(1.7))
    reference = encoder.forward(mel).hidden_states  # (7, frames, 512)
    model = build_encoder(6)
    batch = np.zeros((2, mel.shape[1] + 41, 80), np.float32)
    batch[0, : mel.shape[1]] = mel.T
    batch[1] = np.random.default_rng(1).normal(size=batch[1].shape)  # a longer neighbour must not leak in
    mel_mask = np.zeros(batch.shape[:2], np.float32)
    mel_mask[0, : mel.shape[1]] = 1
    mel_mask[1] = 1
    out = model({"mel": batch, "mel_mask": mel_mask})
    hidden = np.asarray(out["hidden"])[0, : reference.shape[1]].transpose(1, 0, 2)
    assert np.asarray(out["mask"])[0].sum() == reference.shape[1]
    for layer in range(7):
        scale = np.abs(reference[layer]).max()
        assert np.abs(hidden[layer] - reference[layer]).max() <= 1e-4 * scale, layer


def test_cached_frames_are_the_shipped_front_ends_frames(encoder, tmp_path):
    wave = np.concatenate([np.zeros(8000, np.float32), _voice(2.0), np.zeros(8000, np.float32)])
    frames = speech_frames(wave, EmbeddingParams(), (1, 2, 3, 4), encoder=encoder)
    pooled = embed_waveform(wave, EmbeddingParams(), encoder=encoder).pooled
    assert frames.dtype == np.float16 and frames.shape[1:] == (4, 512)
    np.testing.assert_allclose(frames.astype(np.float64).mean(axis=0), pooled[1:5, :512], rtol=2e-3, atol=2e-3)
    path = tmp_path / "clip.npy"  # any readable audio: a .npy is not, so it must come back as a failure
    np.save(path, wave)
    got, failures = cached_frames([path], cache_dir=tmp_path / "cache")
    assert got == [None] and failures and failures[0][0] == str(path)


def _random_frames(n_clips: int, seed: int) -> ClipFrames:
    rng = np.random.default_rng(seed)
    frames = [rng.normal(0, 1 + layer_scale, size=(int(rng.integers(30, 90)), 4, 512)).astype(np.float16)
              for layer_scale in rng.uniform(0, 2, n_clips)]
    labels = np.arange(n_clips) % 6
    return ClipFrames(frames, labels, np.array(["a", "b"] * (n_clips // 2)), np.array(["s"] * n_clips))


def _perturb(model) -> None:
    """Move every trainable weight (adapters start at zero: the test must see them act)."""
    rng = np.random.default_rng(3)
    for variable in model.trainable_variables:
        value = np.asarray(variable)
        variable.assign(value + rng.normal(0, 0.02, value.shape).astype(value.dtype))


@pytest.mark.parametrize("top_blocks, adapter, tolerance", [(0, "lora", 2e-4), (1, "lora", 2e-4), (2, "full", 2e-3)])
def test_numpy_head_gives_keras_probabilities(pinned, tmp_path, top_blocks, adapter, tolerance):
    """Adapters are exported exactly; a fully tuned block's change is stored in int8 (hence ``tolerance``)."""
    recipe = TunedRecipe(top_blocks=top_blocks, adapter=adapter, lora_rank=4)
    n_heads, weights = pinned
    model = build_tuned_model(recipe, n_heads=n_heads, block_weights=weights[2 - top_blocks:])
    _perturb(model)
    data = _random_frames(3, seed=top_blocks)
    rng = np.random.default_rng(0)
    model.get_layer("standardise").set_weights([rng.normal(0, 0.1, (4, 512)).astype(np.float32),
                                                rng.uniform(0.5, 2, (4, 512)).astype(np.float32)])
    path = tmp_path / "tuned.npz"
    digest = export_tuned(model, recipe, path, base_blocks=(n_heads, weights[2 - top_blocks:]))
    head = TunedHead.from_file(path, sha256=digest, base_blocks=(n_heads, weights[2 - top_blocks:]))
    assert path.stat().st_size <= 3_300_000 * top_blocks + 400_000
    columns = [0, 1, 2, 3][: len(recipe.input_layers)]
    for clip in data.frames:
        clip = np.asarray(clip, np.float32)
        hidden = np.concatenate([np.zeros((1, *clip.shape[::2]), np.float32), clip.transpose(1, 0, 2)])
        keras_logits = np.asarray(model({"frames": clip[None][:, :, columns], "mask": np.ones((1, len(clip)))}))[0]
        numpy_logits = head.logits([hidden])
        np.testing.assert_allclose(softmax(numpy_logits), softmax(keras_logits), atol=tolerance)
    with pytest.raises(ValueError, match="SHA-256"):
        TunedHead.from_file(path, sha256="0" * 64, base_blocks=(n_heads, weights))


def test_fit_tuned_learns_a_separable_toy_task_and_exports_adapters_only(pinned, tmp_path, monkeypatch):
    from ser_core.training import whisper_keras

    monkeypatch.setattr(whisper_keras, "load_block_weights", lambda blocks, params=None: (pinned[0], pinned[1][1:]))
    rng = np.random.default_rng(0)
    labels = np.arange(48) % 6
    codes = rng.normal(0, 1, (6, 512))
    frames = [(rng.normal(0, 1, (40, 4, 512)) + 1.5 * codes[label][None, None]).astype(np.float16) for label in labels]
    data = ClipFrames(frames, labels, np.array(["a", "b"] * 24), np.array(["s"] * 48))
    recipe = TunedRecipe(top_blocks=1, adapter="lora", epochs=6, batch_size=16, max_frames=32, lora_rank=4)
    fitted = fit_tuned(data, recipe)
    accuracy = (fitted.predict_logits(data).argmax(axis=1) == labels).mean()
    assert accuracy >= 0.9
    path = tmp_path / "m.npz"
    fitted.export(path)
    assert path.stat().st_size < 500_000  # adapters, the head and the layer statistics: no block weights


def test_end_to_end_route_takes_a_training_step_from_audio(encoder):
    waves = [_voice(1.2, 150, 0), _voice(1.5, 220, 1)]
    recipe = TunedRecipe(read_layers=(1, 2), top_blocks=1, adapter="lora", epochs=1, batch_size=2, max_frames=40)
    model = fit_end_to_end(waves, np.array([0, 3]), np.array(["a", "a"]), recipe, augment=False)
    lora = [v for v in model.trainable_variables if "lora_kernel_b" in v.path]
    assert lora and any(np.abs(np.asarray(v)).max() > 0 for v in lora)  # the adapters moved
