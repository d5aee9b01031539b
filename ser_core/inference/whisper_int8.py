"""The Whisper encoder's transformer blocks as an int8 onnxruntime graph.

Built from the float32 weights the numpy encoder holds (never shipped, never committed): each block
is written as an ONNX graph with the ``onnx`` helpers, then onnxruntime's dynamic quantisation
turns every matrix product with a weight (but :data:`FLOAT32_PRODUCTS`) into int8 weights (one scale
per output channel) times activations quantised per call. The attention products, layer norms,
softmax, GELU, the residual sums and the convolutional stem stay float32.
The quantised graph is kept on disk, keyed by a hash of the weights, the builder's version and the
onnxruntime version, so a process loads it in a fraction of a second after the first build.

Why int8: the matrix products are nearly all of the encoder's work, and a 3 s clip's four blocks
took about a quarter of their numpy float32 time on one thread (``benchmarks/latency.py``), for a
leave-one-corpus-out UAR that moved by less than half a point (docs/experiments.md, S9).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ser_core.inference import whisper_weights

if TYPE_CHECKING:
    from ser_core.inference.whisper_encoder import WhisperEncoder

__all__ = ["ENV_ONNX_CACHE", "FLOAT32_PRODUCTS", "GRAPH_VERSION", "Int8Blocks", "block_graph", "default_cache_dir",
           "int8_blocks"]

ENV_ONNX_CACHE = "SER_ONNX_CACHE"
# Part of the cache file name: bump it whenever the graph or the quantisation settings change.
GRAPH_VERSION = "blocks-v3"
# Products kept in float32. The input of block 4's second feed-forward matrix (its GELU output) has
# a few channels far above the rest, and one int8 scale per call for all of them lost the small
# ones: with it in int8 the frame means of layers 4-6 moved by 5.3-5.6 % (relative L2, two RAVDESS
# clips), against 0.9-1.1 % for layers 1-3; in float32, 1.4-1.8 %, at ~1/24 of the blocks' work.
FLOAT32_PRODUCTS = ("b3_fc2_mm",)
_OPSET = 17  # LayerNormalization
_THREADS = 1  # as the numpy encoder (one BLAS thread): steadier on a shared machine
_LOCK = threading.Lock()
_LOADED: dict[str, "Int8Blocks"] = {}


def default_cache_dir() -> Path:
    """``$SER_ONNX_CACHE``, else ``$XDG_CACHE_HOME/ser_core/onnx`` (``~/.cache/ser_core/onnx``)."""
    env = os.environ.get(ENV_ONNX_CACHE)
    if env:
        return Path(env)
    return whisper_weights.user_cache_dir() / "onnx"


def _weights_digest(encoder: "WhisperEncoder", n_blocks: int) -> str:
    digest = hashlib.sha256()
    for name, array in sorted(encoder.stem_weights().items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(array, np.float32).tobytes())
    for index in range(n_blocks):
        for name, array in sorted(encoder.block_weights(index).items()):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(array, np.float32).tobytes())
    digest.update(f"{encoder.n_heads}".encode())
    return digest.hexdigest()


def block_graph(encoder: "WhisperEncoder", n_blocks: int):
    """The float32 ONNX graph of the stem and the first ``n_blocks`` blocks.

    Input ``mel``: float32 ``(n_mels, frames)``. Output ``hidden``: float32
    ``(n_blocks + 1, frames_out, width)``, the stem's output (layer 0, the two convolutions plus
    positions) at index 0 and block ``i``'s output at index ``i``: the numpy encoder's ``stem`` and
    ``_block`` step by step (pre-norm attention, exact erf GELU, no final LayerNorm). The stem
    runs here rather than in numpy because onnxruntime's convolutions took a tenth of the time.

    Returns
    -------
    onnx.ModelProto
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    width, heads = encoder.width, encoder.n_heads
    nodes, initializers = [], []

    def constant(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op: str, inputs: list[str], name: str, **attributes) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attributes))
        return name

    split_shape = constant("split_shape", np.array([-1, 3, heads, width // heads], np.int64))
    merge_shape = constant("merge_shape", np.array([-1, width], np.int64))
    half = constant("half", np.array(0.5, np.float32))
    one = constant("one", np.array(1.0, np.float32))
    inv_sqrt2 = constant("inv_sqrt2", np.array(1.0 / np.sqrt(2.0), np.float32))
    axis0 = constant("axis0", np.array([0], np.int64))
    axis1 = constant("axis1", np.array([1], np.int64))
    stem = {name: constant(f"stem_{name}", value) for name, value in encoder.stem_weights().items()}

    def gelu(x: str, p: str) -> str:
        erf = node("Erf", [node("Mul", [x, inv_sqrt2], p + "gelu_scaled")], p + "gelu_erf")
        return node("Mul", [node("Mul", [x, half], p + "gelu_half"), node("Add", [erf, one], p + "gelu_plus")], p + "gelu")

    conv1 = node("Conv", [node("Unsqueeze", ["mel", axis0], "mel_batch"), stem["conv1_w"], stem["conv1_b"]],
                 "conv1", kernel_shape=[3], pads=[1, 1])
    conv2 = node("Conv", [gelu(conv1, "conv1_"), stem["conv2_w"], stem["conv2_b"]], "conv2",
                 kernel_shape=[3], pads=[1, 1], strides=[2])
    frames = node("Transpose", [node("Squeeze", [gelu(conv2, "conv2_"), axis0], "conv2_frames")], "stem_t",
                  perm=[1, 0])  # (frames_out, width)
    n_frames = node("Slice", [node("Shape", [frames], "stem_shape"), axis0, axis1], "stem_frames")
    positions = node("Slice", [stem["positions"], axis0, n_frames, axis0], "positions_used")
    x = node("Add", [frames, positions], "stem")
    outputs = [node("Unsqueeze", [x, axis0], "stem_hidden")]
    for i in range(n_blocks):
        w = {name: constant(f"b{i}_{name}", value) for name, value in encoder.block_weights(i).items()}
        p = f"b{i}_"
        ln1 = node("LayerNormalization", [x, w["ln1_g"], w["ln1_b"]], p + "ln1", axis=-1, epsilon=1e-5)
        qkv = node("Add", [node("MatMul", [ln1, w["w_qkv"]], p + "qkv_mm"), w["b_qkv"]], p + "qkv")
        qkv = node("Transpose", [node("Reshape", [qkv, split_shape], p + "qkv_split")], p + "qkv_t",
                   perm=[1, 2, 0, 3])  # (3, heads, frames, head_dim)
        nodes.append(helper.make_node("Split", [qkv], [p + "q", p + "k", p + "v"], name=p + "split", axis=0))
        k_t = node("Transpose", [p + "k"], p + "k_t", perm=[0, 1, 3, 2])
        scores = node("Softmax", [node("MatMul", [p + "q", k_t], p + "scores_mm")], p + "scores", axis=-1)
        attention = node("Transpose", [node("MatMul", [scores, p + "v"], p + "attn_heads")], p + "attn_t",
                         perm=[0, 2, 1, 3])
        attention = node("Reshape", [attention, merge_shape], p + "attn")
        out = node("Add", [node("MatMul", [attention, w["w_out"]], p + "out_mm"), w["b_out"]], p + "out")
        x = node("Add", [x, out], p + "res1")
        ln2 = node("LayerNormalization", [x, w["ln2_g"], w["ln2_b"]], p + "ln2", axis=-1, epsilon=1e-5)
        fc1 = node("Add", [node("MatMul", [ln2, w["w_fc1"]], p + "fc1_mm"), w["b_fc1"]], p + "fc1")
        fc2 = node("Add", [node("MatMul", [gelu(fc1, p), w["w_fc2"]], p + "fc2_mm"), w["b_fc2"]], p + "fc2")
        x = node("Add", [x, fc2], p + "res2")
        outputs.append(node("Unsqueeze", [x, axis0], p + "hidden"))
    hidden = node("Concat", outputs, "hidden", axis=0)
    graph = helper.make_graph(
        nodes, "whisper_encoder",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, [encoder.n_mels, "frames"])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, [n_blocks + 1, "frames_out", width])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)], producer_name="ser_core")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=False)
    return model


def _quantise(model, destination: Path) -> None:
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "float32.onnx"
        onnx.save_model(model, str(source))
        logging.disable(logging.WARNING)  # the quantiser's advice to pre-process: not needed for MatMul only
        try:
            quantize_dynamic(
                str(source), str(destination),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
                nodes_to_exclude=list(FLOAT32_PRODUCTS),
                # Only products with a weight: the attention products (query x key, scores x value)
                # have two activations and stay float32.
                extra_options={"MatMulConstBOnly": True},
            )
        finally:
            logging.disable(logging.NOTSET)


class Int8Blocks:
    """An onnxruntime session over the int8 graph: mel ``(n_mels, frames)`` in, ``(n_blocks + 1, frames_out, width)`` out."""

    def __init__(self, path: Path, n_blocks: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = _THREADS
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.path = path
        self.n_blocks = n_blocks
        self._session = onnxruntime.InferenceSession(str(path), sess_options=options,
                                                     providers=["CPUExecutionProvider"])

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        return self._session.run(None, {"mel": np.ascontiguousarray(mel, np.float32)})[0]


def int8_blocks(encoder: "WhisperEncoder", n_blocks: int, *, cache_dir: str | os.PathLike | None = None) -> Int8Blocks:
    """The int8 graph of ``encoder``'s first ``n_blocks`` blocks, built once and kept on disk.

    Parameters
    ----------
    encoder : WhisperEncoder
        Source of the float32 weights.
    n_blocks : int
        Blocks in the graph.
    cache_dir : path, optional
        Default :func:`default_cache_dir`. If it cannot be written, the graph is built in a
        temporary folder in each process that needs it (several seconds), and loads from there.

    Returns
    -------
    Int8Blocks
        Shared per process for the same weights and ``n_blocks``.
    """
    import onnxruntime

    key = f"{GRAPH_VERSION}-ort{onnxruntime.__version__}-{n_blocks}-{_weights_digest(encoder, n_blocks)[:24]}"
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        path = folder / f"whisper-{key}.int8.onnx"
        if not path.is_file():
            try:
                folder.mkdir(parents=True, exist_ok=True)
                partial = folder / f".{path.name}.{os.getpid()}.tmp"
                _quantise(block_graph(encoder, n_blocks), partial)
                os.replace(partial, path)  # atomic: another process never reads half a file
            except OSError:
                with tempfile.TemporaryDirectory() as scratch:
                    path = Path(scratch) / "blocks.int8.onnx"
                    _quantise(block_graph(encoder, n_blocks), path)
                    blocks = Int8Blocks(path, n_blocks)
                _LOADED[key] = blocks
                return blocks
        blocks = Int8Blocks(path, n_blocks)
        _LOADED[key] = blocks
        return blocks
