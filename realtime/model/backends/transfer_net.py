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

from ..tflite_file import TFLiteFile

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
    def from_tflite(cls, path: Path) -> TransferWeights:
        """Read the weights from the fp16 transfer file with the project's own TF Lite reader
        (:mod:`realtime.model.tflite_file`): the ``tf`` and ``torch`` backends share it, and the
        ``torch`` one never imports TensorFlow."""
        get = TFLiteFile(path).tensor

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


# -- the fast formulation -----------------------------------------------------------------------
#
# The full-resolution layers have 3, 8 or 16 channels, which convolution libraries handle badly
# (oneDNN ran the 9x9 8->3 output conv at under 50 GFLOP/s, a quarter of what the 32-channel
# residual convs reach).  Each of them is rewritten *exactly* (same sums, other order) at half
# resolution on a space-to-depth view, where every full-resolution pixel phase becomes channels:
#
#   stride-1 KxK conv       ->  ceil((K+1)/2) square conv on the s2d view, 4x channels in and out
#   KxK stride-2 conv        ->  2x2 conv on the s2d view of its input
#   nearest x2 + 3x3 conv    ->  3x3 "sub-pixel" conv producing the 4 output phases as channels
#
# Reflect padding at full resolution becomes symmetric padding at low resolution for the last two
# (derivation in the docstrings below).  Instance-norm statistics on an s2d tensor are taken over
# space *and* phases, which is exactly the full-resolution statistic.

def s2d_same_kernel(w: np.ndarray) -> np.ndarray:
    """HWIO KxK stride-1 kernel (input reflect-padded by K//2 at full res) -> kernel on s2d views.

    out[2i+a] = sum_k xp[2i+a+k] w[k]; with a+k = 2m+b this is a conv over cells m (0..K//2+...)
    of s2d(xp) with input phase b and output phase a: W'[m, b, a] = w[2m+b-a] where in range.
    """
    k, _, ci, co = w.shape
    taps = k // 2 + 1  # a + k ranges over 0..K, so m = (a+k)//2 ranges over 0..K//2
    out = np.zeros((taps, taps, 4 * ci, 4 * co), np.float32)
    for ay in range(2):
        for ax in range(2):
            for my in range(taps):
                for mx in range(taps):
                    for by in range(2):
                        for bx in range(2):
                            ky, kx = 2 * my + by - ay, 2 * mx + bx - ax
                            if 0 <= ky < k and 0 <= kx < k:
                                out[my, mx, (by * 2 + bx) * ci : (by * 2 + bx + 1) * ci, (ay * 2 + ax) * co : (ay * 2 + ax + 1) * co] = w[ky, kx]
    return out


def s2d_stride2_kernel(w: np.ndarray) -> np.ndarray:
    """3x3 stride-2 kernel (reflect pad 1 at full res) -> 2x2 kernel on s2d(x), symmetric-padded
    by one cell at top/left: rows 2i-1, 2i, 2i+1 are (cell i-1, phase 1), (i, 0), (i, 1), and the
    reflected row -1 equals row 1, i.e. cell 0 phase 1 (what SYMMETRIC padding copies)."""
    k, _, ci, co = w.shape
    assert k == 3
    out = np.zeros((2, 2, 4 * ci, co), np.float32)
    for my in range(2):
        for mx in range(2):
            for by in range(2):
                for bx in range(2):
                    ky, kx = 2 * my + by - 1, 2 * mx + bx - 1
                    if 0 <= ky < 3 and 0 <= kx < 3:
                        out[my, mx, (by * 2 + bx) * ci : (by * 2 + bx + 1) * ci] = w[ky, kx]
    return out


def subpixel_kernel(w: np.ndarray) -> np.ndarray:
    """Nearest x2 upsampling, reflect pad 1, 3x3 conv -> 3x3 conv on the low-res input padded
    SYMMETRIC by 1, producing the 4 output phases as channels (depth-to-space gives full res).

    up_p[2i+a+k] = x[(2i+a+k-1)//2] (reflection at the border lands on the edge pixel, which
    symmetric padding of x reproduces), so tap k of phase a reads padded cell i + (a+k-1)//2 + 1.
    """
    k, _, ci, co = w.shape
    assert k == 3
    out = np.zeros((3, 3, ci, 4 * co), np.float32)
    for ay in range(2):
        for ax in range(2):
            for ky in range(3):
                for kx in range(3):
                    my, mx = (ay + ky - 1) // 2 + 1, (ax + kx - 1) // 2 + 1
                    out[my, mx, :, (ay * 2 + ax) * co : (ay * 2 + ax + 1) * co] += w[ky, kx]
    return out


def _pad(x, p, mode):
    import tensorflow as tf

    return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode=mode)


def _conv(x, k):
    import tensorflow as tf

    return tf.nn.conv2d(x, k, strides=1, padding="VALID")


def _s2d_reflect_pad4(x):
    """s2d(reflect_pad(d2s(x), 4)) without leaving the s2d view (half the copies).

    Full-res rows -1..-4 reflect to rows 1..4; as cells of two rows that is cell -1 = (row 2,
    row 1) = (phase 0 of cell 1, phase 1 of cell 0) and cell -2 = (phase 0 of cell 2, phase 1 of
    cell 1); at the far end cell n = (phase 0 of n-1, phase 1 of n-2), cell n+1 one further in.
    """
    import tensorflow as tf

    s = tf.shape(x)
    c = x.shape[-1] // 4
    x6 = tf.reshape(x, [s[0], s[1], s[2], 2, 2, c])  # [B, h, w, row phase, column phase, C]

    def rev(t, axis):
        return tf.reverse(t, [axis])

    top = tf.concat([rev(x6[:, 1:3, :, 0:1], 1), rev(x6[:, 0:2, :, 1:2], 1)], 3)
    bottom = tf.concat([rev(x6[:, -2:, :, 0:1], 1), rev(x6[:, -3:-1, :, 1:2], 1)], 3)
    x6 = tf.concat([top, x6, bottom], 1)
    left = tf.concat([rev(x6[:, :, 1:3, :, 0:1], 2), rev(x6[:, :, 0:2, :, 1:2], 2)], 4)
    right = tf.concat([rev(x6[:, :, -2:, :, 0:1], 2), rev(x6[:, :, -3:-1, :, 1:2], 2)], 4)
    x6 = tf.concat([left, x6, right], 2)
    return tf.reshape(x6, [s[0], s[1] + 4, s[2] + 4, 4 * c])


def _reflect_pad_concat(x, p):
    """Reflect padding by slicing and concatenation (MirrorPad is slow on uint8)."""
    import tensorflow as tf

    x = tf.concat([tf.reverse(x[:, 1 : p + 1], [1]), x, tf.reverse(x[:, -p - 1 : -1], [1])], 1)
    return tf.concat([tf.reverse(x[:, :, 1 : p + 1], [2]), x, tf.reverse(x[:, :, -p - 1 : -1], [2])], 2)


def _cin(x, gamma, beta, eps, cdt, phases=1):
    """Conditional instance norm; with phases=4, x is an s2d view and stats span the phases.

    For one image it uses the fused batch-norm kernel in training mode, which computes exactly
    the instance statistics over H and W (biased variance) in one pass instead of moments'
    three (2.7x faster at full resolution here).  The batch size is static (one trace each).
    """
    import tensorflow as tf

    c = gamma.shape[-1]
    xf = tf.cast(x, tf.float32)
    s = tf.shape(xf)
    if phases > 1:  # [B, h, w, 4C] -> [B, h, 4w, C]: the phases join the spatial axes (free)
        xf = tf.reshape(xf, [s[0], s[1], s[2] * phases, c])
    b = xf.shape[0]
    if b == 1:
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(xf, gamma[0], beta[0], epsilon=eps, is_training=True)
    else:  # per-image fused calls or a transpose into channels measured slower here
        mean, var = tf.nn.moments(xf, axes=[1, 2], keepdims=True)
        scale = gamma[:, None, None, :] * tf.math.rsqrt(var + eps)
        y = xf * scale + (beta[:, None, None, :] - mean * scale)
    if phases > 1:
        y = tf.reshape(y, s)
    return tf.cast(y, cdt) if cdt != tf.float32 else y


class _FastNet:
    """The transfer network on space-to-depth views: its constants, made once, and the graph."""

    def __init__(self, weights: TransferWeights, cdt) -> None:
        import tensorflow as tf

        cv = weights.convs
        c1, c2, c3 = (f"transformer/contract/{c}" for c in CONTRACT)
        self.k_c1 = tf.constant(s2d_same_kernel(cv[c1]), cdt)
        self.b_c1 = tf.constant(np.tile(weights.biases[c1], 4), cdt)
        self.k_c2 = tf.constant(s2d_stride2_kernel(cv[c2]), cdt)
        self.b_c2 = tf.constant(weights.biases[c2], cdt)
        self.k_c3 = tf.constant(cv[c3], cdt)
        self.b_c3 = tf.constant(weights.biases[c3], cdt)
        self.k_res = {r: (tf.constant(cv[f"transformer/residual/{r}/conv1"], cdt), tf.constant(cv[f"transformer/residual/{r}/conv2"], cdt)) for r in RESIDUALS}
        self.k_e1 = tf.constant(subpixel_kernel(cv["transformer/expand/conv1/conv"]), cdt)
        self.k_e2 = tf.constant(subpixel_kernel(cv["transformer/expand/conv2/conv"]), cdt)
        self.k_e3 = tf.constant(s2d_same_kernel(cv["transformer/expand/conv3/conv"]), cdt)
        self.gw, self.gb = tf.constant(weights.gamma_w), tf.constant(weights.gamma_b)
        self.bw, self.bb = tf.constant(weights.beta_w), tf.constant(weights.beta_b)
        self.splits = list(weights.channels)
        self.eps, self.cdt = weights.eps, cdt

    def __call__(self, x_s2d_input, codes):
        """x: s2d view of the reflect-4-padded input, already scaled to [0,1]. Returns the s2d
        view of the pre-sigmoid output (12 channels)."""
        import tensorflow as tf

        eps, cdt = self.eps, self.cdt
        gammas = tf.split(tf.matmul(codes, self.gw) + self.gb, self.splits, axis=1)
        betas = tf.split(tf.matmul(codes, self.bw) + self.bb, self.splits, axis=1)
        with tf.name_scope("contract_conv1"):
            x = tf.nn.relu(_conv(x_s2d_input, self.k_c1) + self.b_c1)  # s2d view of conv1's output
        with tf.name_scope("contract_conv2"):
            x = tf.nn.relu(_conv(tf.pad(x, [[0, 0], [1, 0], [1, 0], [0, 0]], mode="SYMMETRIC"), self.k_c2) + self.b_c2)
        with tf.name_scope("contract_conv3"):
            x = tf.nn.relu(tf.nn.conv2d(_pad(x, 1, "REFLECT"), self.k_c3, strides=2, padding="VALID") + self.b_c3)
        k = 0
        for r in RESIDUALS:
            with tf.name_scope(r):
                k1, k2 = self.k_res[r]
                h = tf.nn.relu(_cin(_conv(_pad(x, 1, "REFLECT"), k1), gammas[k], betas[k], eps, cdt))
                h = _cin(_conv(_pad(h, 1, "REFLECT"), k2), gammas[k + 1], betas[k + 1], eps, cdt)
                x = x + h
            k += 2
        with tf.name_scope("expand_conv1"):
            x = _conv(_pad(x, 1, "SYMMETRIC"), self.k_e1)  # 4 phases of expand1's output
            x = tf.nn.relu(_cin(x, gammas[k], betas[k], eps, cdt, phases=4))
            x = tf.nn.depth_to_space(x, 2)
        with tf.name_scope("expand_conv2"):
            x = _conv(_pad(x, 1, "SYMMETRIC"), self.k_e2)  # 4 phases of expand2's output (full res)
            x = tf.nn.relu(_cin(x, gammas[k + 1], betas[k + 1], eps, cdt, phases=4))
        with tf.name_scope("expand_conv3"):
            x = _conv(_s2d_reflect_pad4(x), self.k_e3)  # 4 phases of expand3's output
            return _cin(x, gammas[k + 2], betas[k + 2], eps, cdt, phases=4)


def build_fast_transfer_fn(weights: TransferWeights, compute_dtype: str = "float32", jit: bool = False):
    """Same contract as :func:`build_transfer_fn`, with the full-resolution layers run on
    space-to-depth views (see above).  Matches the reference within float rounding."""
    import tensorflow as tf

    cdt = tf.dtypes.as_dtype(compute_dtype)
    net_s2d = _FastNet(weights, cdt)

    @tf.function(jit_compile=jit)
    def float_fn(images, codes):
        x = tf.nn.space_to_depth(_pad(tf.cast(images, cdt), 4, "REFLECT"), 2)
        y = net_s2d(x, codes)
        return tf.nn.depth_to_space(tf.sigmoid(tf.cast(y, tf.float32)), 2)

    @tf.function(jit_compile=jit)
    def uint8_fn(frames, codes):
        x = tf.nn.space_to_depth(_reflect_pad_concat(frames, 4), 2)  # pad and shuffle bytes, not floats
        y = net_s2d(tf.cast(x, cdt) * tf.constant(1.0 / 255.0, cdt), codes)
        y = tf.clip_by_value(tf.sigmoid(tf.cast(y, tf.float32)) * 255.0 + 0.5, 0.0, 255.0)
        return tf.nn.depth_to_space(tf.cast(y, tf.uint8), 2)

    return BatchTraced(float_fn, tf.float32), BatchTraced(uint8_fn, tf.uint8)


class BatchTraced:
    """Calls a tf.function through one concrete function per batch size (H and W stay dynamic).

    The batch size must be static for the per-image fused normalization; sizes are few in practice
    (1 live, the batch size and one remainder for video files), and each is traced once.
    """

    def __init__(self, fn, dtype) -> None:
        self.fn = fn
        self.dtype = dtype
        self._concrete: dict = {}

    def __call__(self, images, codes):
        import tensorflow as tf

        b = int(images.shape[0])
        c = self._concrete.get(b)
        if c is None:
            c = self.fn.get_concrete_function(tf.TensorSpec([b, None, None, 3], self.dtype), tf.TensorSpec([b, 100], tf.float32))
            self._concrete[b] = c
        return c(tf.convert_to_tensor(images, self.dtype), tf.convert_to_tensor(codes, tf.float32))
