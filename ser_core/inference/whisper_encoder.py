"""Frozen Whisper encoder in plain numpy, read straight from a CTranslate2 ``model.bin``.

The file is parsed as data only (no pickle, no code execution); only the
``encoder/*`` variables are read and converted to float32.

Two switches serve a head that reads only some layers (:meth:`WhisperEncoder.variant`): the pass
stops after the highest block asked for (the blocks above it cannot change the ones below), and
the transformer blocks can run as an int8 onnxruntime graph
(:mod:`ser_core.inference.whisper_int8`) instead of numpy float32.
"""

from __future__ import annotations

import copy
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "PRECISIONS",
    "SAMPLE_RATE",
    "CT2FormatError",
    "EncoderOutput",
    "WhisperEncoder",
    "log_mel_spectrogram",
    "mel_filters",
    "pool_hidden_states",
    "read_ct2_variables",
]

PathLike = Union[str, os.PathLike]

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
CHUNK_SECONDS = 30
N_SAMPLES = CHUNK_SECONDS * SAMPLE_RATE
N_FRAMES = N_SAMPLES // HOP_LENGTH
LAYER_NORM_EPS = 1e-5

_CT2_DTYPES = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    5: np.dtype("<u2"),
}
_BFLOAT16 = 5
_SUPPORTED_VERSIONS = (4, 5, 6)
# How the transformer blocks run: numpy float32, or an onnxruntime graph with int8 weights and
# dynamically quantised activations in its matrix products (whisper_int8).
PRECISIONS = ("float32", "int8")


class CT2FormatError(ValueError):
    """Raised when a file is not a readable CTranslate2 model.bin."""


class _ChainedReader:
    """Sequential reader over several files treated as one byte stream."""

    def __init__(self, paths: Sequence[PathLike]) -> None:
        self._paths = [Path(p) for p in paths]
        self._sizes = [p.stat().st_size for p in self._paths]
        self._index = 0
        self._handle: Optional[BinaryIO] = None
        self._open(0)

    def _open(self, index: int) -> None:
        if self._handle is not None:
            self._handle.close()
        self._index = index
        self._handle = open(self._paths[index], "rb") if index < len(self._paths) else None

    def read(self, n: int) -> bytes:
        chunks = []
        while n > 0 and self._handle is not None:
            data = self._handle.read(n)
            if not data:
                self._open(self._index + 1)
                continue
            chunks.append(data)
            n -= len(data)
        if n > 0:
            raise CT2FormatError(f"unexpected end of file in {self._paths[-1]}")
        return b"".join(chunks)

    def skip(self, n: int) -> None:
        while n > 0 and self._handle is not None:
            pos = self._handle.tell()
            left = self._sizes[self._index] - pos
            if n < left:
                self._handle.seek(n, os.SEEK_CUR)
                return
            n -= left
            self._open(self._index + 1)
        if n > 0:
            raise CT2FormatError(f"unexpected end of file in {self._paths[-1]}")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def unpack(self, fmt: str) -> Tuple:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))

    def string(self) -> str:
        (length,) = self.unpack("<H")
        return self.read(length)[:-1].decode("utf-8")


def read_ct2_variables(
    files: Union[PathLike, Sequence[PathLike]], prefix: str = "encoder/"
) -> Tuple[str, Dict[str, np.ndarray]]:
    """Read variables from a CTranslate2 ``model.bin`` without executing anything.

    Parameters
    ----------
    files : path or sequence of paths
        ``model.bin``, or its parts in order (read as one stream, no copy on disk).
    prefix : str
        Only variables whose name starts with this prefix are read; others are skipped.

    Returns
    -------
    spec_name : str
        The model spec name, e.g. ``"WhisperSpec"``.
    variables : dict of str to numpy.ndarray
        Variables in their stored dtype (bfloat16 is returned as float32). Aliases
        pointing to a loaded variable are resolved.
    """
    paths = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    reader = _ChainedReader(paths)
    try:
        (version,) = reader.unpack("<I")
        if version not in _SUPPORTED_VERSIONS:
            raise CT2FormatError(
                f"{paths[0]}: unsupported CTranslate2 binary version {version} "
                f"(supported: {_SUPPORTED_VERSIONS})"
            )
        spec_name = reader.string()
        reader.unpack("<I")
        (n_vars,) = reader.unpack("<I")
        variables: Dict[str, np.ndarray] = {}
        for _ in range(n_vars):
            name = reader.string()
            (rank,) = reader.unpack("<B")
            shape = reader.unpack(f"<{rank}I") if rank else ()
            type_id, n_bytes = reader.unpack("<BI")
            if not name.startswith(prefix):
                reader.skip(n_bytes)
                continue
            if type_id not in _CT2_DTYPES:
                raise CT2FormatError(f"{name}: unknown dtype id {type_id}")
            array = np.frombuffer(reader.read(n_bytes), dtype=_CT2_DTYPES[type_id])
            if type_id == _BFLOAT16:
                array = (array.astype(np.uint32) << 16).view(np.float32)
            variables[name] = array.reshape(shape)
        (n_aliases,) = reader.unpack("<I")
        for _ in range(n_aliases):
            alias, target = reader.string(), reader.string()
            if target in variables:
                variables[alias] = variables[target]
    finally:
        reader.close()
    return spec_name, variables


def _dequantize(variables: Dict[str, np.ndarray], name: str) -> np.ndarray:
    weight = variables[name]
    scale = variables.get(name.rsplit("/", 1)[0] + "/weight_scale")
    if scale is not None and weight.dtype.kind == "i":
        shape = (-1,) + (1,) * (weight.ndim - 1)
        return weight.astype(np.float32) / np.asarray(scale, np.float32).reshape(shape)
    return weight.astype(np.float32)


@dataclass(frozen=True)
class _Block:
    ln1_g: np.ndarray
    ln1_b: np.ndarray
    w_qkv: np.ndarray
    b_qkv: np.ndarray
    w_out: np.ndarray
    b_out: np.ndarray
    ln2_g: np.ndarray
    ln2_b: np.ndarray
    w_fc1: np.ndarray
    b_fc1: np.ndarray
    w_fc2: np.ndarray
    b_fc2: np.ndarray


@dataclass(frozen=True)
class EncoderOutput:
    """Result of a Whisper encoder pass.

    Attributes
    ----------
    hidden_states : numpy.ndarray
        float32, shape ``(n_blocks + 1, frames, width)`` where ``n_blocks`` is the number of
        blocks that ran (all ``n_layers`` unless the pass stopped early). Index 0 is the conv
        stem output plus positional embeddings, index ``i`` the output of block ``i``.
        No final LayerNorm is applied to any of them.
    final : numpy.ndarray or None
        float32, shape ``(frames, width)``: ``ln_post(hidden_states[-1])``, i.e. what
        CTranslate2's ``Whisper.encode`` and OpenAI Whisper's encoder return; None when the
        pass stopped before the last block.
    """

    hidden_states: np.ndarray
    final: Optional[np.ndarray]


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=-1, keepdims=True)
    return centred * (1.0 / np.sqrt(var + LAYER_NORM_EPS)) * gamma + beta


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU; erf via Abramowitz-Stegun 7.1.26 (|error| <= 1.5e-7, float32 level)."""
    z = np.abs(x) * np.float32(0.7071067811865476)
    t = 1.0 / (1.0 + np.float32(0.3275911) * z)
    poly = np.float32(1.061405429)
    for coef in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly = poly * t + np.float32(coef)
    poly = poly * t
    erf_abs = 1.0 - poly * np.exp(-z * z)
    return 0.5 * x * (1.0 + np.copysign(erf_abs, x))


def _softmax_inplace(x: np.ndarray) -> np.ndarray:
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


_MEL_CACHE: Dict[int, np.ndarray] = {}


def mel_filters(n_mels: int = 80) -> np.ndarray:
    """Slaney mel filterbank used by Whisper, ``librosa.filters.mel(sr=16000, n_fft=400)``.

    Parameters
    ----------
    n_mels : int
        80 (all models but large-v3) or 128.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(n_mels, n_fft // 2 + 1)``.
    """
    if n_mels not in _MEL_CACHE:
        import librosa

        _MEL_CACHE[n_mels] = librosa.filters.mel(
            sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=n_mels
        ).astype(np.float32)
    return _MEL_CACHE[n_mels]


_WINDOW = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def log_mel_spectrogram(
    audio: np.ndarray, sr: int = SAMPLE_RATE, n_mels: int = 80, pad_to_30s: bool = False
) -> np.ndarray:
    """Whisper's log-mel spectrogram.

    Parameters
    ----------
    audio : numpy.ndarray
        Mono waveform, float in [-1, 1].
    sr : int
        Sample rate of ``audio``; resampled to 16 kHz with librosa if different.
    n_mels : int
        Number of mel bins (80, or 128 for large-v3).
    pad_to_30s : bool
        If True, zero-pad (or trim) the waveform to 30 s first, giving exactly the
        3000-frame input of ``whisper.log_mel_spectrogram(whisper.pad_or_trim(audio))``.
        If False, a clip of ``N`` samples gives ``N // 160`` frames.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(n_mels, frames)``.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono 1-D audio, got shape {audio.shape}")
    if sr != SAMPLE_RATE:
        import librosa

        audio = librosa.resample(audio, orig_sr=sr, target_sr=SAMPLE_RATE).astype(np.float32)
    if pad_to_30s:
        audio = audio[:N_SAMPLES]
        audio = np.pad(audio, (0, N_SAMPLES - audio.shape[0]))
    n_frames = audio.shape[0] // HOP_LENGTH
    if n_frames < 1:
        raise ValueError(f"audio too short: {audio.shape[0]} samples, need at least {HOP_LENGTH}")
    half = N_FFT // 2
    if audio.shape[0] > half:
        padded = np.pad(audio, (half, half), mode="reflect")
    else:
        padded = np.pad(audio, (half, half))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:n_frames]
    spectrum = np.fft.rfft(frames * _WINDOW, axis=-1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    mel = mel_filters(n_mels) @ power.T
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


def pool_hidden_states(hidden_states: np.ndarray) -> np.ndarray:
    """Mean and standard deviation over time for every layer.

    Parameters
    ----------
    hidden_states : numpy.ndarray
        Shape ``(n_layers + 1, frames, width)``.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(n_layers + 1, 2 * width)``: ``[mean, std]`` (population std).
    """
    h = np.asarray(hidden_states, dtype=np.float32)
    return np.concatenate([h.mean(axis=1), h.std(axis=1)], axis=-1).astype(np.float32)


class WhisperEncoder:
    """Frozen Whisper encoder running on numpy float32 (or int8 blocks, see :meth:`variant`).

    Parameters
    ----------
    variables : dict of str to numpy.ndarray
        The ``encoder/*`` variables of a CTranslate2 Whisper ``model.bin``.

    Attributes
    ----------
    n_layers : int
        Transformer blocks in the model (6 for base).
    n_blocks : int
        Blocks one :meth:`forward` runs by default (``n_layers`` unless a :meth:`variant` stops earlier).
    precision : str
        "float32" or "int8" (one of :data:`PRECISIONS`).
    """

    def __init__(self, variables: Dict[str, np.ndarray]) -> None:
        def get(name: str) -> np.ndarray:
            key = f"encoder/{name}"
            if key not in variables:
                raise CT2FormatError(f"missing variable {key}")
            return _dequantize(variables, key)

        self.n_heads = int(variables["encoder/num_heads"])
        conv1 = get("conv1/weight")
        conv2 = get("conv2/weight")
        self.width, self.n_mels, kernel = conv1.shape
        if kernel != 3 or conv2.shape != (self.width, self.width, 3):
            raise CT2FormatError(f"unexpected conv shapes {conv1.shape}, {conv2.shape}")
        self._conv1_w = np.ascontiguousarray(conv1.transpose(2, 1, 0).reshape(-1, self.width))
        self._conv1_b = get("conv1/bias")
        self._conv2_w = np.ascontiguousarray(conv2.transpose(2, 1, 0).reshape(-1, self.width))
        self._conv2_b = get("conv2/bias")
        if "encoder/position_encodings/encodings" in variables:
            self._positions = get("position_encodings/encodings")
        else:
            self._positions = _sinusoids(N_FRAMES // 2, self.width)
        self._ln_post_g = get("layer_norm/gamma")
        self._ln_post_b = get("layer_norm/beta")
        self.n_layers = sum(1 for k in variables if k.endswith("/self_attention/linear_1/weight"))
        head_dim = self.width // self.n_heads
        q_scale = np.float32(1.0 / np.sqrt(head_dim))
        self._blocks: List[_Block] = []
        for i in range(self.n_layers):
            p = f"layer_{i}"
            w_qkv = get(f"{p}/self_attention/linear_0/weight").copy()
            b_qkv = get(f"{p}/self_attention/linear_0/bias").copy()
            w_qkv[: self.width] *= q_scale
            b_qkv[: self.width] *= q_scale
            self._blocks.append(
                _Block(
                    ln1_g=get(f"{p}/self_attention/layer_norm/gamma"),
                    ln1_b=get(f"{p}/self_attention/layer_norm/beta"),
                    w_qkv=np.ascontiguousarray(w_qkv.T),
                    b_qkv=b_qkv,
                    w_out=np.ascontiguousarray(get(f"{p}/self_attention/linear_1/weight").T),
                    b_out=get(f"{p}/self_attention/linear_1/bias"),
                    ln2_g=get(f"{p}/ffn/layer_norm/gamma"),
                    ln2_b=get(f"{p}/ffn/layer_norm/beta"),
                    w_fc1=np.ascontiguousarray(get(f"{p}/ffn/linear_0/weight").T),
                    b_fc1=get(f"{p}/ffn/linear_0/bias"),
                    w_fc2=np.ascontiguousarray(get(f"{p}/ffn/linear_1/weight").T),
                    b_fc2=get(f"{p}/ffn/linear_1/bias"),
                )
            )
        self.n_blocks = self.n_layers
        self.precision = "float32"
        self._int8_blocks = None  # whisper_int8.Int8Blocks once an int8 variant is made

    def variant(
        self, *, n_blocks: Optional[int] = None, precision: str = "float32",
        cache_dir: Optional[PathLike] = None,
    ) -> "WhisperEncoder":
        """The same weights, run another way: stopping after ``n_blocks`` blocks, in ``precision``.

        The variant shares every array with this encoder (no copy). Its hidden states are
        identical to this encoder's first ``n_blocks + 1`` (float32: bit for bit; the blocks
        above never feed back into those below).

        Parameters
        ----------
        n_blocks : int, optional
            Blocks to run, 1..``n_layers``; default all. A head reading layers ``(1, 2, 3, 4)``
            needs 4.
        precision : {"float32", "int8"}
            "int8" runs the blocks as an onnxruntime graph with int8 weights, built from these
            weights on first use and kept on disk keyed by their hash
            (:func:`ser_core.inference.whisper_int8.int8_blocks`).
        cache_dir : path, optional
            Where the int8 graph is kept (default: ``$SER_ONNX_CACHE`` or the user cache dir).

        Returns
        -------
        WhisperEncoder

        Examples
        --------
        >>> fast = encoder.variant(n_blocks=4, precision="int8")  # doctest: +SKIP
        >>> fast.forward(mel).hidden_states.shape[0]  # doctest: +SKIP
        5
        """
        n_blocks = self.n_layers if n_blocks is None else int(n_blocks)
        if not 1 <= n_blocks <= self.n_layers:
            raise ValueError(f"n_blocks must be in 1..{self.n_layers}, got {n_blocks}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        other = copy.copy(self)
        other.n_blocks, other.precision, other._int8_blocks = n_blocks, precision, None
        if precision == "int8":
            from ser_core.inference.whisper_int8 import int8_blocks

            other._int8_blocks = int8_blocks(self, n_blocks, cache_dir=cache_dir)
        return other

    def block_weights(self, index: int) -> Dict[str, np.ndarray]:
        """Block ``index``'s float32 arrays as this encoder applies them (matrices ``(in, out)``,
        the query projection already scaled by ``1 / sqrt(head_dim)``)."""
        block = self._blocks[index]
        return {name: getattr(block, name) for name in _Block.__dataclass_fields__}

    @classmethod
    def from_model_bin(cls, files: Union[PathLike, Sequence[PathLike]]) -> "WhisperEncoder":
        """Build the encoder from a ``model.bin`` path or its ordered parts.

        Parameters
        ----------
        files : path or sequence of paths
            CTranslate2 Whisper ``model.bin`` (or ``model.bin.part1``, ``.part2``...).

        Returns
        -------
        WhisperEncoder
        """
        spec, variables = read_ct2_variables(files, prefix="encoder/")
        if spec != "WhisperSpec":
            raise CT2FormatError(f"expected a WhisperSpec model, got {spec!r}")
        return cls(variables)

    @classmethod
    def from_pretrained(
        cls,
        model: str = "base",
        model_dir: Optional[PathLike] = None,
        verify: bool = True,
        allow_download: bool = True,
    ) -> "WhisperEncoder":
        """Locate (and hash-check) the weights through the source chain, then load them.

        Parameters
        ----------
        model : str
            ``"base"`` (multilingual, default) or ``"tiny.en"``.
        model_dir : path, optional
            Folder with ``model.bin`` or ``model.bin.part1``/``part2``; defaults to
            ``$SER_WHISPER_DIR``, then the pip packages, then the Hugging Face hub.
        verify : bool
            Check the pinned SHA-256 of the weights.
        allow_download : bool
            Allow the last-resort hub download.

        Returns
        -------
        WhisperEncoder
        """
        from ser_core.inference.whisper_weights import resolve_weights

        weights = resolve_weights(
            model, model_dir=model_dir, verify=verify, allow_download=allow_download
        )
        return cls.from_model_bin(weights.files)

    def log_mel(
        self, audio: np.ndarray, sr: int = SAMPLE_RATE, pad_to_30s: bool = False
    ) -> np.ndarray:
        """Whisper log-mel features for this model; see :func:`log_mel_spectrogram`."""
        return log_mel_spectrogram(audio, sr=sr, n_mels=self.n_mels, pad_to_30s=pad_to_30s)

    def forward(self, mel: np.ndarray, n_blocks: Optional[int] = None) -> EncoderOutput:
        """Run the encoder on log-mel features.

        Parameters
        ----------
        mel : numpy.ndarray
            Shape ``(n_mels, frames)`` with ``frames <= 3000`` (3000 for the padded
            Whisper input). The positional table is sliced to the output length.
        n_blocks : int, optional
            Stop after this many blocks (at most :attr:`n_blocks`); default :attr:`n_blocks`.

        Returns
        -------
        EncoderOutput
            ``(frames - 1) // 2 + 1`` output frames, ``n_blocks + 1`` hidden states.
        """
        n_blocks = self.n_blocks if n_blocks is None else int(n_blocks)
        if not 1 <= n_blocks <= self.n_blocks:
            raise ValueError(f"n_blocks must be in 1..{self.n_blocks}, got {n_blocks}")
        mel = self._checked_mel(mel)
        if self._int8_blocks is not None:
            hidden = self._int8_blocks(mel)[: n_blocks + 1]
        else:
            x = self.stem(mel)
            hidden = np.empty((n_blocks + 1, x.shape[0], self.width), np.float32)
            hidden[0] = x
            for i, block in enumerate(self._blocks[:n_blocks]):
                x = self._block(x, block)
                hidden[i + 1] = x
        if n_blocks < self.n_layers:
            return EncoderOutput(hidden_states=hidden, final=None)
        final = _layer_norm(hidden[-1], self._ln_post_g, self._ln_post_b)
        return EncoderOutput(hidden_states=hidden, final=final.astype(np.float32, copy=False))

    def _checked_mel(self, mel: np.ndarray) -> np.ndarray:
        mel = np.asarray(mel, dtype=np.float32)
        if mel.ndim != 2 or mel.shape[0] != self.n_mels:
            raise ValueError(f"expected mel of shape ({self.n_mels}, frames), got {mel.shape}")
        if mel.shape[1] > 2 * self._positions.shape[0]:
            raise ValueError(f"{mel.shape[1]} mel frames exceed Whisper's 30 s window ({N_FRAMES})")
        return mel

    def stem(self, mel: np.ndarray) -> np.ndarray:
        """The two convolutions plus positional embeddings: float32 ``(frames_out, width)``, layer 0."""
        mel = self._checked_mel(mel)
        n_in = mel.shape[1]
        x = np.zeros((n_in + 2, self.n_mels), np.float32)
        x[1:-1] = mel.T
        cols = np.concatenate([x[0:n_in], x[1 : n_in + 1], x[2 : n_in + 2]], axis=1)
        x = _gelu(cols @ self._conv1_w + self._conv1_b)
        n_out = (n_in - 1) // 2 + 1
        x = np.pad(x, ((1, 1), (0, 0)))
        cols = np.concatenate(
            [x[0 : 2 * n_out : 2], x[1 : 2 * n_out + 1 : 2], x[2 : 2 * n_out + 2 : 2]], axis=1
        )
        x = _gelu(cols @ self._conv2_w + self._conv2_b)
        x += self._positions[:n_out]
        return x

    def stem_weights(self) -> Dict[str, np.ndarray]:
        """The stem's float32 arrays: convolution kernels ``(out, in, 3)`` as stored, biases, and the
        positional table ``(max_frames, width)``."""
        return {
            "conv1_w": np.ascontiguousarray(self._conv1_w.reshape(3, self.n_mels, self.width).transpose(2, 1, 0)),
            "conv1_b": self._conv1_b,
            "conv2_w": np.ascontiguousarray(self._conv2_w.reshape(3, self.width, self.width).transpose(2, 1, 0)),
            "conv2_b": self._conv2_b,
            "positions": self._positions,
        }

    def _block(self, x: np.ndarray, b: _Block) -> np.ndarray:
        t, d = x.shape
        h, dh = self.n_heads, d // self.n_heads
        qkv = _layer_norm(x, b.ln1_g, b.ln1_b) @ b.w_qkv + b.b_qkv
        qkv = qkv.reshape(t, 3, h, dh).transpose(1, 2, 0, 3)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = _softmax_inplace(q @ k.transpose(0, 2, 1))
        attn = (scores @ v).transpose(1, 0, 2).reshape(t, d)
        x = x + (attn @ b.w_out + b.b_out)
        y = _gelu(_layer_norm(x, b.ln2_g, b.ln2_b) @ b.w_fc1 + b.b_fc1)
        return x + (y @ b.w_fc2 + b.b_fc2)

    def encode(
        self, audio: np.ndarray, sr: int = SAMPLE_RATE, pad_to_30s: bool = False
    ) -> EncoderOutput:
        """Waveform to encoder outputs (log-mel + :meth:`forward`).

        Parameters
        ----------
        audio : numpy.ndarray
            Mono waveform, at most 30 s.
        sr : int
            Sample rate of ``audio``.
        pad_to_30s : bool
            Whisper's exact 30 s padded input (1500 output frames) if True; otherwise
            about 50 output frames per second of audio.

        Returns
        -------
        EncoderOutput
        """
        return self.forward(self.log_mel(audio, sr=sr, pad_to_30s=pad_to_30s))

    def pooled(
        self, audio: np.ndarray, sr: int = SAMPLE_RATE, pad_to_30s: bool = False
    ) -> np.ndarray:
        """Per-layer mean/std summary of :meth:`encode`, shape ``(n_blocks + 1, 2 * width)``."""
        return pool_hidden_states(self.encode(audio, sr=sr, pad_to_30s=pad_to_30s).hidden_states)


def _sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> np.ndarray:
    log_increment = np.log(max_timescale) / (channels // 2 - 1)
    inv = np.exp(-log_increment * np.arange(channels // 2))
    scaled = np.arange(length)[:, None] * inv[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1).astype(np.float32)
