"""The style transfer network rebuilt as a TensorFlow graph from the fp16 TF Lite file's weights.

Why rebuild it: the TF Lite interpreter is CPU-only here, fixed to one batch and (without patching)
one size.  As a plain TF graph the same trained network runs on a GPU, batches, takes any size that
is a multiple of 4, and can use XLA and mixed precision.  Structure (Ghiasi et al. 2017, TF Lite
variant with 8/16/32 channels):

    contract: mirror-pad, conv 9x9/1 (8) ReLU, conv 3x3/2 (16) ReLU, conv 3x3/2 (32) ReLU
    residual1..5: conv 3x3 -> CIN -> ReLU -> conv 3x3 -> CIN, added to the input
    expand1, expand2: nearest x2 -> conv 3x3 -> CIN -> ReLU;  expand3: conv 9x9 -> CIN -> sigmoid

CIN is conditional instance norm: per-channel mean/var over H, W; ``gamma``/``beta`` are 1x1 convs
of the 100-number style code.  Biases of convolutions followed by CIN are dropped: the mean
subtraction cancels them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .tflite_util import make_interpreter

CONTRACT = ("conv1", "conv2", "conv3")
CONTRACT_STRIDES = (1, 2, 2)
RESIDUALS = tuple(f"residual{i}" for i in range(1, 6))
EXPANDS = ("conv1", "conv2", "conv3")


def norm_layers() -> list[str]:
    """Scopes of the conditional instance norm layers, in network order."""
    names = []
    for r in RESIDUALS:
        names += [f"transformer/residual/{r}/conv1", f"transformer/residual/{r}/conv2"]
    names += [f"transformer/expand/{e}/conv" for e in EXPANDS]
    return names


@dataclass
class TransferWeights:
    """All weights, HWIO float32, keyed by TF Lite scope name."""

    convs: dict[str, np.ndarray]  # scope -> [kh, kw, in, out]
    biases: dict[str, np.ndarray]  # contract scopes -> [out]
    gamma_w: np.ndarray  # [100, sum(C)] for all norm layers, concatenated
    gamma_b: np.ndarray  # [sum(C)]
    beta_w: np.ndarray
    beta_b: np.ndarray
    channels: list[int]  # channels of each norm layer, in norm_layers() order
    eps: float

    @classmethod
    def from_tflite(cls, path: Path) -> "TransferWeights":
        it = make_interpreter(path, 1)
        tensors = {d["name"]: d["index"] for d in it.get_tensor_details()}

        def get(name: str) -> np.ndarray:
            return np.asarray(it.get_tensor(tensors[name]), np.float32)

        def hwio(name: str) -> np.ndarray:  # TF Lite stores OHWI
            return np.transpose(get(name), (1, 2, 3, 0))

        convs, biases = {}, {}
        for c in CONTRACT:
            scope = f"transformer/contract/{c}"
            convs[scope] = hwio(scope + "/weights")
            biases[scope] = get(scope + "/Conv2D_bias")
        for r in RESIDUALS:
            for c in ("conv1", "conv2"):
                scope = f"transformer/residual/{r}/{c}"
                convs[scope] = hwio(scope + "/weights")
        for e in EXPANDS:
            scope = f"transformer/expand/{e}/conv"
            convs[scope] = hwio(scope + "/weights")
        gw, gb, bw, bb, channels, eps = [], [], [], [], [], set()
        for scope in norm_layers():
            sp = "style_params/" + scope + "/StyleNorm"
            # beta = Conv (the shift), gamma = Conv_1 (the scale): see the SUB/MUL ops in the file.
            bw.append(get(sp + "/Conv/weights")[:, 0, 0, :].T)
            bb.append(get(sp + "/Conv/Conv2D_bias"))
            gw.append(get(sp + "/Conv_1/weights")[:, 0, 0, :].T)
            gb.append(get(sp + "/Conv_1/Conv2D_bias"))
            channels.append(gw[-1].shape[1])
            eps.add(float(get(scope + "/StyleNorm/batchnorm/add/y")))
        if len(eps) != 1:
            raise ValueError(f"expected one epsilon for all norm layers, got {sorted(eps)}")
        return cls(
            convs=convs,
            biases=biases,
            gamma_w=np.concatenate(gw, 1),
            gamma_b=np.concatenate(gb),
            beta_w=np.concatenate(bw, 1),
            beta_b=np.concatenate(bb),
            channels=channels,
            eps=eps.pop(),
        )


def build_transfer_fn(weights: TransferWeights, compute_dtype: str = "float32", jit: bool = False):
    """Return (float_fn, uint8_fn): tf.functions over any batch and any size (multiples of 4).

    ``float_fn(images f32 [B,H,W,3] in [0,1], codes f32 [B,100]) -> f32 [B,H,W,3]``
    ``uint8_fn(frames u8 [B,H,W,3], codes) -> u8`` (conversion inside the graph, no numpy copies).
    ``compute_dtype="float16"`` runs convolutions in half precision (GPU mixed precision); the
    instance-norm statistics stay in float32.
    """
    import tensorflow as tf

    cdt = tf.dtypes.as_dtype(compute_dtype)
    convs = {k: tf.constant(v, dtype=cdt) for k, v in weights.convs.items()}
    biases = {k: tf.constant(v, dtype=cdt) for k, v in weights.biases.items()}
    gw, gb = tf.constant(weights.gamma_w), tf.constant(weights.gamma_b)
    bw, bb = tf.constant(weights.beta_w), tf.constant(weights.beta_b)
    splits = list(weights.channels)
    eps = weights.eps

    def pad(x, p):
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")

    def conv(x, scope, stride=1):
        w = convs[scope]
        x = pad(x, w.shape[0] // 2)
        return tf.nn.conv2d(x, w, strides=stride, padding="VALID")

    def cin(x, gamma, beta):
        xf = tf.cast(x, tf.float32)
        mean, var = tf.nn.moments(xf, axes=[1, 2], keepdims=True)
        scale = gamma * tf.math.rsqrt(var + eps)
        shift = beta - mean * scale
        return tf.cast(xf * scale + shift, cdt) if cdt != tf.float32 else xf * scale + shift

    def upsample(x):
        s = tf.shape(x)
        return tf.image.resize(x, [s[1] * 2, s[2] * 2], method="nearest")

    def net(images, codes):
        gammas = tf.split(tf.matmul(codes, gw) + gb, splits, axis=1)
        betas = tf.split(tf.matmul(codes, bw) + bb, splits, axis=1)
        params = [(g[:, None, None, :], b[:, None, None, :]) for g, b in zip(gammas, betas)]
        x = tf.cast(images, cdt)
        for c, stride in zip(CONTRACT, CONTRACT_STRIDES):
            scope = f"transformer/contract/{c}"
            x = tf.nn.relu(conv(x, scope, stride) + biases[scope])
        k = 0
        for r in RESIDUALS:
            h = tf.nn.relu(cin(conv(x, f"transformer/residual/{r}/conv1"), *params[k]))
            h = cin(conv(h, f"transformer/residual/{r}/conv2"), *params[k + 1])
            x = x + h
            k += 2
        for i, e in enumerate(EXPANDS):
            if i < 2:
                x = upsample(x)
            x = cin(conv(x, f"transformer/expand/{e}/conv"), *params[k])
            k += 1
            x = tf.nn.relu(x) if i < 2 else tf.sigmoid(tf.cast(x, tf.float32))
        return x

    sig_f = [tf.TensorSpec([None, None, None, 3], tf.float32), tf.TensorSpec([None, 100], tf.float32)]
    sig_u = [tf.TensorSpec([None, None, None, 3], tf.uint8), tf.TensorSpec([None, 100], tf.float32)]

    @tf.function(input_signature=sig_f, jit_compile=jit, reduce_retracing=True)
    def float_fn(images, codes):
        return net(images, codes)

    @tf.function(input_signature=sig_u, jit_compile=jit, reduce_retracing=True)
    def uint8_fn(frames, codes):
        y = net(tf.cast(frames, tf.float32) * (1.0 / 255.0), codes)
        return tf.cast(tf.clip_by_value(y * 255.0 + 0.5, 0.0, 255.0), tf.uint8)

    return float_fn, uint8_fn
