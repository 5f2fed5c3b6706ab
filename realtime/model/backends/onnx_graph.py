"""The transfer network as an ONNX graph, written directly from its weights with ``onnx.helper``.

Why not ``torch.onnx.export`` (what issue #26 suggested): the ONNX backend is how Windows users with
AMD or Intel GPUs (DirectML) get a GPU, and they should not need a 200 MB+ PyTorch to export a
graph once.  The graph here is written from :class:`TransferWeights` (read from the fp16 TF Lite
file without TensorFlow) with the small ``onnx`` package, so neither exporting nor running needs
PyTorch or TensorFlow; the math is the other backends' (``transfer_net``, ``torch_backend``).

One graph per input kind, every size dynamic: batch, height and width (multiples of 4):

    uint8:  frames u8 [B,H,W,3], codes f32 [B,100] -> u8 [B,H,W,3]  (/255 in, *255+0.5, clip,
            floor out: the conversions run inside the graph, on the provider's device)
    float:  images f32 [B,H,W,3] in [0,1], codes -> f32 [B,H,W,3] in [0,1]  (the tests' path)

The network, as in ``transfer_net``:

    reflect pad 4, conv 9x9 (3->8) ReLU, reflect pad 1, conv 3x3/2 (16) ReLU, conv 3x3/2 (32) ReLU
    residual x5: pad, conv 3x3, CIN, ReLU, pad, conv 3x3, CIN, + input
    expand x2: nearest x2 (of the layer's input: any size), pad, conv 3x3, CIN, ReLU
    expand3: pad 4, conv 9x9 (8->3), CIN, sigmoid

CIN (conditional instance norm) is ``InstanceNormalization`` with unit scale and zero shift, then a
per-sample ``gamma * y + beta``, where gamma and beta ([B, C] per layer) are two matrix products of
the code (all layers at once, then one split).  Convolutions followed by CIN carry no bias: the mean
subtraction cancels it.

Two formulations are written (:data:`FORMULATIONS`): ``plain``, as above, and ``s2d``, the
``openvino`` backend's rewrite of the full-resolution layers on space-to-depth views (same sums,
four times the channels at half the resolution; ``transfer_net`` derives the kernels), here with
dynamic shapes: ``SpaceToDepth``/``DepthToSpace`` ops, TF's one-cell SYMMETRIC pad as ``edge``,
and the phase-wise outputs in channel-major (CRD) order so each phase-wise norm is a reshape.
Two precisions (:data:`DTYPES`): ``float32``, and ``float16`` for the GPU providers (``--precision
mixed``; ``auto`` there).  In float16 the weights are float16 constants (the fp16 TF Lite file's own
values, exact; ``s2d``'s derived kernels, sums of them, rounded once) and the convolutions, ReLUs, resizes and residual sums run in float16, but every
conditional instance norm runs in float32 as the ``torch`` backend's does: its input cast up, the
statistics, normalization and gamma/beta in float32 (the style's gamma and beta come from float32
matrix products of the float32 codes), cast back down after; the last one stays float32 for the
sigmoid and the uint8 conversion.  The inputs and outputs are the float32 graph's (uint8 or float32
frames, float32 codes), so callers cannot tell the two apart.  Why the norms: a sum over a whole
1920x1080 plane and its squares in float16 would lose the statistics' low bits (and overflow
past 65504), and the normalized values feed the next layer unscaled.

Measured on ORT's CPU provider (``benchmarks/onnx_cpu.py``: 2 threads of a 2-core EPYC VM, 684x384,
uint8 path, the best of two interleaved rounds): s2d 74 ms per frame, plain 116 ms (its 3-, 8- and
16-channel convolutions at full resolution dominate), openvino's static s2d graph 67 ms; so the
backend builds ``s2d`` (:data:`FORMULATION`: 1.56x plain, 0.91x openvino on the CPU, where
openvino stays ``auto``'s choice), and the tests hold both forms to the other backends' numerics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .transfer_net import (
    CONTRACT,
    CONTRACT_STRIDES,
    EXPANDS,
    RESIDUALS,
    TransferWeights,
    norm_layers,
    s2d_same_kernel,
    s2d_stride2_kernel,
    subpixel_kernel,
)

#: Bump when the graph changes: the cached ``.onnx`` files are keyed on it.
GRAPH_VERSION = 1
#: ONNX opset: 17 is what every provider here takes (ORT >= 1.14, DirectML, CoreML).
OPSET = 17
#: The formulations :func:`build_model` can write; the backend uses :data:`FORMULATION`.
FORMULATIONS = ("plain", "s2d")
FORMULATION = "s2d"
FRAMES, CODES, OUTPUT = "frames", "codes", "stylized"
#: The compute precisions :func:`build_model` writes (``float16``: the norms in float32, see above).
DTYPES = ("float32", "float16")


def _oihw(w: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """HWIO (TF layout) -> OIHW (ONNX's convolution layout)."""
    return np.ascontiguousarray(np.transpose(w, (3, 2, 0, 1)), dtype)


class _Graph:
    """Nodes and constants of one graph, with unique names; ``dtype`` is the compute precision of the
    convolutions and activations (the norms always run in float32)."""

    def __init__(self, dtype: str = "float32") -> None:
        from onnx import TensorProto, helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.np_dtype = np.dtype(dtype).type
        self.half = dtype == "float16"
        self.FLOAT, self.COMPUTE = TensorProto.FLOAT, (TensorProto.FLOAT16 if self.half else TensorProto.FLOAT)
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def _name(self, op: str) -> str:
        self._n += 1
        return f"{op.lower()}_{self._n}"

    def const(self, a: Any, name: str = "") -> str:
        name = name or self._name("c")
        self.inits.append(self.numpy_helper.from_array(np.asarray(a), name))
        return name

    def op(self, op: str, *inputs: str, n_out: int = 1, **attrs: Any) -> Any:
        base = self._name(op)
        outs = [base] if n_out == 1 else [f"{base}_{i}" for i in range(n_out)]
        self.nodes.append(self.helper.make_node(op, list(inputs), outs, name=base, **attrs))
        return outs[0] if n_out == 1 else outs

    # -- the network's pieces ---------------------------------------------------------------------

    def pad(self, x: str, before: int, after: int, mode: str = "reflect") -> str:
        """Pad H and W of an NCHW tensor (``edge`` by 1 is TF's SYMMETRIC by 1)."""
        return self.op("Pad", x, self.const(np.array([0, 0, before, before, 0, 0, after, after], np.int64)), mode=mode)

    def conv(self, x: str, w_hwio: np.ndarray, bias: Any = None, stride: int = 1) -> str:
        """A convolution in the compute precision (weights and bias stored in it)."""
        dt = self.np_dtype
        ins = [x, self.const(_oihw(w_hwio, dt))] + ([self.const(np.asarray(bias, dt))] if bias is not None else [])
        k = w_hwio.shape[0]
        return self.op("Conv", *ins, kernel_shape=[k, k], strides=[stride, stride])

    def cin(self, x: str, gamma: str, beta: str, channels: int, eps: float, phases: int = 1, last: bool = False) -> str:
        """Conditional instance norm of ``x`` [B, phases*C, h, w]; ``gamma``/``beta`` are float32
        [B,C,1,1].  With phases=4 (an s2d view, channels in CRD order: channel-major, see :func:`_crd`)
        the statistics span the phases too (the full-resolution ones): a free reshape to [B, C, 4h, w].
        In a float16 graph it runs in float32 (cast up, and back down unless ``last``: the sigmoid
        and the output conversion stay float32)."""
        one, zero = self.const(np.ones(channels, np.float32)), self.const(np.zeros(channels, np.float32))
        if phases > 1:
            shape = self.op("Shape", x)
            x = self.op("Reshape", x, self.const(np.array([0, channels, -1, 0], np.int64)))
        if self.half:
            x = self.op("Cast", x, to=self.FLOAT)
        y = self.op("InstanceNormalization", x, one, zero, epsilon=eps)
        y = self.op("Add", self.op("Mul", y, gamma), beta)
        if self.half and not last:
            y = self.op("Cast", y, to=self.COMPUTE)
        return self.op("Reshape", y, shape) if phases > 1 else y

    def upsample2(self, x: str) -> str:
        """Nearest x2 of this input's size (not the TF Lite file's 384x384 constants)."""
        return self.op("Resize", x, "", self.const(np.array([1, 1, 2, 2], np.float32)), mode="nearest",
                       coordinate_transformation_mode="asymmetric", nearest_mode="floor")


def _crd(w: np.ndarray) -> np.ndarray:
    """A kernel whose 4*C output channels are phase-major (``transfer_net``'s kernels: phase*C + c)
    -> channel-major (c*4 + phase): ONNX's DepthToSpace in CRD mode, and each channel's four phases
    adjacent, so the phase-wise instance norm is a reshape, not a transpose."""
    kh, kw, ci, co4 = w.shape
    return np.ascontiguousarray(w.reshape(kh, kw, ci, 4, co4 // 4).transpose(0, 1, 2, 4, 3).reshape(kh, kw, ci, co4))


def _norm_params(g: _Graph, w: TransferWeights, codes: str) -> list[tuple[str, str]]:
    """gamma and beta of every norm layer as [B, C, 1, 1]: two matrix products of the codes, split."""
    splits = g.const(np.array(w.channels, np.int64))
    axes = g.const(np.array([2, 3], np.int64))
    out = []
    for wm, bm in ((w.gamma_w, w.gamma_b), (w.beta_w, w.beta_b)):
        y = g.op("Add", g.op("MatMul", codes, g.const(wm.astype(np.float32))), g.const(bm.astype(np.float32)))
        parts = g.op("Split", y, splits, axis=1, n_out=len(w.channels))
        out.append([g.op("Unsqueeze", p, axes) for p in parts])
    return list(zip(out[0], out[1]))


def _plain(g: _Graph, w: TransferWeights, x: str, params: list[tuple[str, str]]) -> str:
    """[B,3,H,W] in [0,1] -> pre-sigmoid [B,3,H,W]."""
    cv = w.convs
    for c, stride in zip(CONTRACT, CONTRACT_STRIDES):
        scope = f"transformer/contract/{c}"
        p = cv[scope].shape[0] // 2
        x = g.op("Relu", g.conv(g.pad(x, p, p), cv[scope], w.biases[scope], stride))
    x = _residuals(g, w, x, params)
    k = 2 * len(RESIDUALS)
    for i, e in enumerate(EXPANDS):
        kern = cv[f"transformer/expand/{e}/conv"]
        p = kern.shape[0] // 2
        if i < 2:
            x = g.upsample2(x)
        x = g.cin(g.conv(g.pad(x, p, p), kern), *params[k + i], kern.shape[3], w.eps, last=i == 2)
        if i < 2:
            x = g.op("Relu", x)
    return x


def _residuals(g: _Graph, w: TransferWeights, x: str, params: list[tuple[str, str]]) -> str:
    k = 0
    for r in RESIDUALS:
        k1, k2 = w.convs[f"transformer/residual/{r}/conv1"], w.convs[f"transformer/residual/{r}/conv2"]
        h = g.op("Relu", g.cin(g.conv(g.pad(x, 1, 1), k1), *params[k], k1.shape[3], w.eps))
        h = g.cin(g.conv(g.pad(h, 1, 1), k2), *params[k + 1], k2.shape[3], w.eps)
        x = g.op("Add", x, h)
        k += 2
    return x


def _s2d(g: _Graph, w: TransferWeights, x: str, params: list[tuple[str, str]]) -> str:
    """The same sums on space-to-depth views (see ``transfer_net``): [B,3,H,W] -> pre-sigmoid
    s2d view [B,12,H/2,W/2] (DepthToSpace gives full resolution)."""
    cv = w.convs
    c1, c2, c3 = (f"transformer/contract/{c}" for c in CONTRACT)
    x = g.op("SpaceToDepth", g.pad(x, 4, 4), blocksize=2)
    x = g.op("Relu", g.conv(x, s2d_same_kernel(cv[c1]), np.tile(w.biases[c1], 4)))
    x = g.op("Relu", g.conv(g.pad(x, 1, 0, "edge"), s2d_stride2_kernel(cv[c2]), w.biases[c2]))
    x = g.op("Relu", g.conv(g.pad(x, 1, 1), cv[c3], w.biases[c3], stride=2))
    x = _residuals(g, w, x, params)
    k = 2 * len(RESIDUALS)
    e1, e2, e3 = (cv[f"transformer/expand/{e}/conv"] for e in EXPANDS)
    x = g.op("Relu", g.cin(g.conv(g.pad(x, 1, 1, "edge"), _crd(subpixel_kernel(e1))), *params[k], e1.shape[3], w.eps, phases=4))
    x = g.op("DepthToSpace", x, blocksize=2, mode="CRD")
    x = g.op("Relu", g.cin(g.conv(g.pad(x, 1, 1, "edge"), _crd(subpixel_kernel(e2))), *params[k + 1], e2.shape[3], w.eps, phases=4))
    x = g.op("DepthToSpace", x, blocksize=2, mode="CRD")
    x = g.op("SpaceToDepth", g.pad(x, 4, 4), blocksize=2)
    return g.cin(g.conv(x, _crd(s2d_same_kernel(e3))), *params[k + 2], e3.shape[3], w.eps, phases=4, last=True)


def build_model(weights: TransferWeights, uint8: bool, formulation: str = FORMULATION, dtype: str = "float32") -> Any:
    """An ``onnx.ModelProto``: ``frames`` [B,H,W,3] (u8, or f32 in [0,1]) and ``codes`` f32 [B,100]
    -> ``stylized`` [B,H,W,3] (u8 rounded half up and saturated, or f32 in [0,1]).  Batch, height and
    width are dynamic (height and width multiples of 4).  ``dtype`` is the compute precision
    (:data:`DTYPES`; the same inputs and outputs either way).  Checked with ``onnx.checker``."""
    import onnx
    from onnx import TensorProto, helper

    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if len(weights.channels) != len(norm_layers()):
        raise ValueError(f"expected {len(norm_layers())} norm layers, got {len(weights.channels)}")
    g = _Graph(dtype)
    elem = TensorProto.UINT8 if uint8 else TensorProto.FLOAT
    frames = helper.make_tensor_value_info(FRAMES, elem, ["batch", "height", "width", 3])
    codes = helper.make_tensor_value_info(CODES, TensorProto.FLOAT, ["batch", 100])
    out = helper.make_tensor_value_info(OUTPUT, elem, ["batch", "height", "width", 3])
    params = _norm_params(g, weights, CODES)
    x = g.op("Transpose", FRAMES, perm=[0, 3, 1, 2])  # NHWC -> NCHW (on bytes where uint8)
    if uint8:
        x = g.op("Mul", g.op("Cast", x, to=g.COMPUTE), g.const(g.np_dtype(1.0 / 255.0)))
    elif g.half:
        x = g.op("Cast", x, to=g.COMPUTE)
    if formulation == "plain":
        y = g.op("Sigmoid", _plain(g, weights, x, params))
    else:
        y = g.op("Sigmoid", _s2d(g, weights, x, params))
    if uint8:
        y = g.op("Add", g.op("Mul", y, g.const(np.float32(255.0))), g.const(np.float32(0.5)))
        y = g.op("Clip", y, g.const(np.float32(0.0)), g.const(np.float32(255.0)))
        y = g.op("Cast", g.op("Floor", y), to=TensorProto.UINT8)
    if formulation == "s2d":
        y = g.op("DepthToSpace", y, blocksize=2, mode="CRD")  # on bytes where uint8
    g.nodes.append(helper.make_node("Transpose", [y], [OUTPUT], name="to_nhwc", perm=[0, 2, 3, 1]))
    name = f"transfer_{formulation}_{'u8' if uint8 else 'f32'}{'_fp16' if g.half else ''}"
    graph = helper.make_graph(g.nodes, name, [frames, codes], [out], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="realtime", producer_version=str(GRAPH_VERSION))
    model.ir_version = 8  # what ORT >= 1.14 reads (opset 17)
    onnx.checker.check_model(model)
    return model
