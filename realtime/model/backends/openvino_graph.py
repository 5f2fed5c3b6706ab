"""The transfer network as an OpenVINO graph built from its weights, in the fast (space-to-depth) form.

Why not run the TF Lite file as it is: OpenVINO's per-layer counters (``PERF_COUNT``) put 42% of a
592x252 frame in the four full-resolution convolutions, which have 3, 8 or 16 channels (the 9x9
8->3 output conv alone: 23%; the 9x9 3->8 input conv: 9%), plus 4% in mirror padding, which the CPU
plugin runs with its reference kernel.  oneDNN's kernels want many channels.  The ``tf`` backend
already rewrites those layers exactly on space-to-depth views (see ``transfer_net``: same sums, other
order, four times the channels at half the resolution), and on CPUs without AMX it ran a fifth
faster than OpenVINO on the file.  Here the same rewrite is built with OpenVINO's opset from the
same weights and the same kernel transforms, so both backends run one formulation:

    input u8 NHWC -> reflect pad 4 and space-to-depth as one reshape/transpose (on bytes)
    contract conv1 9x9 (3->8)   -> 5x5 conv on the s2d view (12->32)
    contract conv2 3x3/2        -> 2x2 conv on the s2d view
    residuals (quarter resolution, 32 channels): as in the file
    expand1, expand2 (nearest x2 + 3x3) -> 3x3 sub-pixel convs (4 output phases as channels)
    expand3 9x9 (8->3)          -> 5x5 conv on the s2d view (32->12)
    sigmoid, x255, round, u8, then depth-to-space and NCHW -> NHWC as one transpose (on bytes)

Reflect and symmetric padding are gathers along one axis (one copy each), not the Pad op.
Instance-norm statistics on a s2d view are taken over space and phases: the full-resolution ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .transfer_net import (
    RESIDUALS,
    TransferWeights,
    s2d_same_kernel,
    s2d_stride2_kernel,
    subpixel_kernel,
)

CONTENT_INPUT = "content_image"
CODE_INPUT = "mobilenet_conv/Conv/BiasAdd"



def import_openvino() -> Any:
    """``import openvino`` without its model-conversion tools.

    Why: the package imports ``openvino.tools.ovc`` (and with it its telemetry and an HTTP client)
    only for ``convert_model``, which we never call (graphs are built from the weights here), and
    only if it can (``except ImportError``).  Leaving it out takes 0.1-0.2 s off every command's
    start (0.16-0.31 s -> 0.08-0.10 s here).  A later ``import openvino.tools.ovc`` still works."""
    import sys

    loaded = sys.modules.get("openvino", False)
    if loaded is None:  # blocked (as on a machine without it, in the tests)
        raise ImportError("openvino is not available")
    if loaded:
        return loaded
    blocked = "openvino.tools.ovc" not in sys.modules
    if blocked:
        sys.modules["openvino.tools.ovc"] = None  # type: ignore[assignment]  # ImportError inside openvino/__init__
    try:
        import openvino
    finally:
        if blocked and sys.modules.get("openvino.tools.ovc", 0) is None:
            del sys.modules["openvino.tools.ovc"]
    return openvino

def _oihw(w: np.ndarray) -> np.ndarray:
    """HWIO (TF layout) -> OIHW (OpenVINO's convolution layout)."""
    return np.ascontiguousarray(np.transpose(w, (3, 2, 0, 1)), np.float32)


def _pad_indices(n: int, p: int, symmetric: bool) -> np.ndarray:
    """Source indices of a reflect (edge not repeated) or symmetric (edge repeated) pad by ``p``."""
    s = 0 if symmetric else 1
    top = np.arange(p - 1 + s, s - 1, -1) if p else np.zeros(0, np.int64)
    bottom = np.arange(n - 1 - s, n - 1 - s - p, -1) if p else np.zeros(0, np.int64)
    return np.concatenate([top, np.arange(n), bottom]).astype(np.int32)


class _Builder:
    """Helpers over one batch size and frame size (every shape is static)."""

    def __init__(self, weights: TransferWeights, batch: int) -> None:
        import_openvino()
        from openvino import opset13 as ops

        self.ops = ops
        self.w = weights
        self.batch = batch

    def const(self, a: Any) -> Any:
        return self.ops.constant(np.asarray(a))

    def pad(self, x: Any, hw: tuple[int, int], axes: tuple[int, int], before: int, after: int, symmetric: bool) -> Any:
        """Pad spatial ``axes`` (sizes ``hw``) with slices of single rows/columns and one concat
        per axis (the Pad op's reflect mode runs a reference kernel on the CPU plugin, and a
        gather forces the plain memory layout, which costs reorders around every conv)."""
        ops = self.ops
        for n, axis in zip(hw, axes):
            idx = _pad_indices(n, max(before, after), symmetric)
            cut = max(before, after)
            idx = idx[cut - before : len(idx) - (cut - after)]
            pieces = [self._rows(x, int(i), int(i) + 1, axis) for i in idx[:before]]
            pieces.append(x)
            pieces += [self._rows(x, int(i), int(i) + 1, axis) for i in idx[len(idx) - after :]]
            x = ops.concat(pieces, axis) if len(pieces) > 1 else x
        return x

    def _rows(self, x: Any, start: int, stop: int, axis: int) -> Any:
        c = self.const
        return self.ops.slice(x, c(np.array([start], np.int64)), c(np.array([stop], np.int64)), c(np.array([1], np.int64)), c(np.array([axis], np.int64)))

    def conv(self, x: Any, w_hwio: np.ndarray, stride: int = 1) -> Any:
        return self.ops.convolution(x, self.const(_oihw(w_hwio)), [stride, stride], [0, 0], [0, 0], [1, 1])

    def bias_relu(self, x: Any, b: np.ndarray) -> Any:
        return self.ops.relu(self.ops.add(x, self.const(np.asarray(b, np.float32).reshape(1, -1, 1, 1))))

    def cin(self, x: Any, gamma: Any, beta: Any, shape: tuple[int, int, int], phases: int = 1) -> Any:
        """Conditional instance norm of x [B, phases*C, h, w]; ``gamma``/``beta`` are [B, C]."""
        ops, b = self.ops, self.batch
        c, h, w = shape
        if phases == 1:
            y = ops.mvn(x, self.const(np.array([2, 3], np.int32)), True, self.w.eps, "inside_sqrt")
            g = ops.reshape(gamma, self.const(np.array([b, c, 1, 1], np.int64)), False)
            s = ops.reshape(beta, self.const(np.array([b, c, 1, 1], np.int64)), False)
            return ops.add(ops.multiply(y, g), s)
        x4 = ops.reshape(x, self.const(np.array([b, phases, c, h * w], np.int64)), False)
        y = ops.mvn(x4, self.const(np.array([1, 3], np.int32)), True, self.w.eps, "inside_sqrt")
        g = ops.reshape(gamma, self.const(np.array([b, 1, c, 1], np.int64)), False)
        s = ops.reshape(beta, self.const(np.array([b, 1, c, 1], np.int64)), False)
        y = ops.add(ops.multiply(y, g), s)
        return ops.reshape(y, self.const(np.array([b, phases * c, h, w], np.int64)), False)


def build_fast_model(weights: TransferWeights, batch: int, height: int, width: int, uint8: bool) -> Any:
    """An ``openvino.Model``: content [B,H,W,3] (u8 or f32 in [0,1]) and code [B,1,1,100] ->
    [B,H,W,3] (u8, rounded half up and saturated, or f32 in [0,1]).  H, W multiples of 4."""
    ov = import_openvino()

    if height % 4 or width % 4:
        raise ValueError(f"height and width must be multiples of 4, got {height}x{width}")
    g = _Builder(weights, batch)
    ops, b = g.ops, batch
    cv = weights.convs
    h2, w2, h4, w4 = height // 2, width // 2, height // 4, width // 4

    content = ops.parameter([b, height, width, 3], ov.Type.u8 if uint8 else ov.Type.f32, name=CONTENT_INPUT)
    code = ops.parameter([b, 1, 1, 100], ov.Type.f32, name=CODE_INPUT)

    # gammas and betas of every norm layer: two small matmuls, then one slice per layer
    codes = ops.reshape(code, g.const(np.array([b, 100], np.int64)), False)
    gam = ops.add(ops.matmul(codes, g.const(weights.gamma_w.astype(np.float32)), False, False), g.const(weights.gamma_b.astype(np.float32)))
    bet = ops.add(ops.matmul(codes, g.const(weights.beta_w.astype(np.float32)), False, False), g.const(weights.beta_b.astype(np.float32)))
    params, start = [], 0
    for c in weights.channels:
        sl = [g.const(np.array([start], np.int64)), g.const(np.array([start + c], np.int64)), g.const(np.array([1], np.int64)), g.const(np.array([1], np.int64))]
        params.append((ops.slice(gam, *sl), ops.slice(bet, *sl)))
        start += c

    # input: reflect pad 4 (NHWC), then space-to-depth and NHWC -> NCHW in one transpose
    x = g.pad(content, (height, width), (1, 2), 4, 4, symmetric=False)
    hp, wp = (height + 8) // 2, (width + 8) // 2
    x = ops.reshape(x, g.const(np.array([b, hp, 2, wp, 2, 3], np.int64)), False)
    x = ops.transpose(x, g.const(np.array([0, 2, 4, 5, 1, 3], np.int64)))  # [B, by, bx, C, h, w]
    x = ops.reshape(x, g.const(np.array([b, 12, hp, wp], np.int64)), False)
    x = ops.convert(x, ov.Type.f32)
    if uint8:
        x = ops.multiply(x, g.const(np.float32(1.0 / 255.0)))

    c1, c2, c3 = (f"transformer/contract/{c}" for c in ("conv1", "conv2", "conv3"))
    x = g.bias_relu(g.conv(x, s2d_same_kernel(cv[c1])), np.tile(weights.biases[c1], 4))  # [B,32,h2,w2]
    x = g.pad(x, (h2, w2), (2, 3), 1, 0, symmetric=True)
    x = g.bias_relu(g.conv(x, s2d_stride2_kernel(cv[c2])), weights.biases[c2])  # [B,16,h2,w2]
    x = g.pad(x, (h2, w2), (2, 3), 1, 1, symmetric=False)
    x = g.bias_relu(g.conv(x, cv[c3], stride=2), weights.biases[c3])  # [B,32,h4,w4]

    k = 0
    for r in RESIDUALS:
        k1, k2 = cv[f"transformer/residual/{r}/conv1"], cv[f"transformer/residual/{r}/conv2"]
        c = k1.shape[3]
        y = g.conv(g.pad(x, (h4, w4), (2, 3), 1, 1, symmetric=False), k1)
        y = ops.relu(g.cin(y, *params[k], (c, h4, w4)))
        y = g.conv(g.pad(y, (h4, w4), (2, 3), 1, 1, symmetric=False), k2)
        x = ops.add(x, g.cin(y, *params[k + 1], (c, h4, w4)))
        k += 2

    e1, e2, e3 = (cv[f"transformer/expand/{e}/conv"] for e in ("conv1", "conv2", "conv3"))
    x = g.conv(g.pad(x, (h4, w4), (2, 3), 1, 1, symmetric=True), subpixel_kernel(e1))  # 4 phases of expand1
    x = ops.relu(g.cin(x, *params[k], (e1.shape[3], h4, w4), phases=4))
    x = ops.depth_to_space(x, "blocks_first", 2)  # [B,16,h2,w2]
    x = g.conv(g.pad(x, (h2, w2), (2, 3), 1, 1, symmetric=True), subpixel_kernel(e2))  # 4 phases of expand2
    x = ops.relu(g.cin(x, *params[k + 1], (e2.shape[3], h2, w2), phases=4))
    # expand3 reads the full-resolution picture reflect-padded by 4: back to full resolution, pad,
    # and into the s2d view again (the copies are on 8 channels; the conv is the cost)
    x = ops.depth_to_space(x, "blocks_first", 2)  # [B,8,H,W]
    x = g.pad(x, (height, width), (2, 3), 4, 4, symmetric=False)
    x = ops.space_to_depth(x, "blocks_first", 2)  # [B,32,hp,wp]
    x = g.conv(x, s2d_same_kernel(e3))  # [B,12,h2,w2]
    x = ops.sigmoid(g.cin(x, *params[k + 2], (e3.shape[3], h2, w2), phases=4))
    if uint8:
        x = ops.add(ops.multiply(x, g.const(np.float32(255.0))), g.const(np.float32(0.5)))
        x = ops.convert(ops.floor(ops.clamp(x, 0.0, 255.0)), ov.Type.u8)
    # depth-to-space and NCHW -> NHWC as one transpose
    x = ops.reshape(x, g.const(np.array([b, 2, 2, 3, h2, w2], np.int64)), False)
    x = ops.transpose(x, g.const(np.array([0, 4, 1, 5, 2, 3], np.int64)))  # [B, h, by, w, bx, C]
    out = ops.reshape(x, g.const(np.array([b, height, width, 3], np.int64)), False)
    return ov.Model([out], [content, code], "transfer_s2d")
