"""The transfer network as a PyTorch module, built from the fp16 TF Lite file's weights.

Why its own module: the ``torch`` backend (:mod:`.torch_backend`) is the runtime around it (device,
precision, CUDA streams, graphs, pinned buffers); this is the network alone, the same layers as
:mod:`.transfer_net` describes, so the two can be read and changed apart.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from .transfer_net import CONTRACT, CONTRACT_STRIDES, EXPANDS, RESIDUALS, TransferWeights


class TransferNet(torch.nn.Module):
    """The transfer network (see :mod:`.transfer_net` for its structure) as a PyTorch module.

    Convolutions run in ``dtype`` (half precision on a GPU); the style code's gamma/beta (1x1 convs
    of the code, here one matrix product each) and the instance-norm statistics run in float32.
    Upsampling is nearest x2 of the layer's input (the file's constants say 384x384), so any size
    that is a multiple of 4 works, in batches with a code per frame.
    """

    def __init__(self, w: TransferWeights, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype
        self.eps = float(w.eps)
        self.channels = list(w.channels)

        def conv(name: str) -> torch.Tensor:  # HWIO -> OIHW, channels_last like the activations
            t = torch.from_numpy(np.ascontiguousarray(w.convs[name].transpose(3, 2, 0, 1)))
            return t.to(device, dtype).contiguous(memory_format=torch.channels_last)

        def const(a: np.ndarray, dt: torch.dtype) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(device, dt)

        self.contract = [(conv(f"transformer/contract/{c}"), const(w.biases[f"transformer/contract/{c}"], dtype), s)
                         for c, s in zip(CONTRACT, CONTRACT_STRIDES)]
        self.residual = [(conv(f"transformer/residual/{r}/conv1"), conv(f"transformer/residual/{r}/conv2")) for r in RESIDUALS]
        self.expand = [conv(f"transformer/expand/{e}/conv") for e in EXPANDS]
        self.gamma_w, self.gamma_b = const(w.gamma_w, torch.float32), const(w.gamma_b, torch.float32)
        self.beta_w, self.beta_b = const(w.beta_w, torch.float32), const(w.beta_b, torch.float32)

    @staticmethod
    def _conv(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None, stride: int = 1) -> torch.Tensor:
        p = weight.shape[-1] // 2
        return F.conv2d(F.pad(x, (p, p, p, p), mode="reflect"), weight, bias, stride)

    def _cin(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, out_dtype: torch.dtype) -> torch.Tensor:
        """Conditional instance norm: statistics over H, W in float32 (biased variance, as TF's
        moments), then gamma * normalized + beta, one scale and shift per image and channel."""
        xf = x.float()
        var, mean = torch.var_mean(xf, dim=(2, 3), keepdim=True, correction=0)
        scale = gamma[:, :, None, None] * torch.rsqrt(var + self.eps)
        return (xf * scale + (beta[:, :, None, None] - mean * scale)).to(out_dtype)

    def forward(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """``x``: [B,3,H,W] in [0,1] (``self.dtype``), ``codes``: float32 [B,100] -> float32 [B,3,H,W]."""
        gammas = torch.addmm(self.gamma_b, codes, self.gamma_w).split(self.channels, 1)
        betas = torch.addmm(self.beta_b, codes, self.beta_w).split(self.channels, 1)
        for weight, bias, stride in self.contract:
            x = F.relu(self._conv(x, weight, bias, stride))
        k = 0
        for w1, w2 in self.residual:
            h = F.relu(self._cin(self._conv(x, w1), gammas[k], betas[k], self.dtype))
            x = x + self._cin(self._conv(h, w2), gammas[k + 1], betas[k + 1], self.dtype)
            k += 2
        for i, weight in enumerate(self.expand):
            last = i == len(self.expand) - 1
            if not last:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # x2 of this input, not the file's 384
            x = self._cin(self._conv(x, weight), gammas[k + i], betas[k + i], torch.float32 if last else self.dtype)
            x = torch.sigmoid(x) if last else F.relu(x)
        return x

    def forward_uint8(self, frames: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """uint8 RGB [B,H,W,3] -> uint8 [B,H,W,3], the conversions on the device: only uint8 has to
        cross the bus.  The NHWC frames viewed as NCHW are channels_last already (no copy)."""
        x = frames.permute(0, 3, 1, 2).to(self.dtype) * (1.0 / 255.0)
        y = self.forward(x, codes)
        return (y * 255.0 + 0.5).clamp_(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1)
