"""The stability filter's full-size half on a PyTorch device (the GPU the torch backend runs on).

Why: at 1920x1080 the carry (upsample the flow, warp the previous output, blend, round) is a
float32 remap and blend of 6 M values per frame: 20-30 ms of CPU where OpenCV has one core to
spare, so a GPU that stylizes 1080p at hundreds of frames a second would wait on it.  On the GPU
it is a few element-wise kernels.  The flow itself stays on the CPU (DIS on small grey frames,
2-3 ms): only the flow field and the confidence at the flow's size (a few hundred KB) and the
stylized frame go up, the uint8 result comes down.

Same arithmetic as :class:`~realtime.effects.stability.OpenCVCarry`: bilinear flow upsampling with
half-pixel centres (``cv2.resize``), bilinear sampling at ``x + flow(x)`` with the edge pixel
outside the frame (``BORDER_REPLICATE``), ``raw + w * (carried - raw)``, rounding to uint8;
OpenCV samples with 1/32-pixel weights, so the two differ by a grey level here and there
(tests/test_stability.py bounds it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


class TorchCarry:
    """The carry on ``device``; its memory is a float32 [1, 3, H, W] tensor that stays there."""

    def __init__(self, device: torch.device) -> None:
        self.device = torch.device(device)
        self._bases: dict[tuple[int, int], torch.Tensor] = {}

    def __repr__(self) -> str:
        return f"TorchCarry({self.device})"

    def _up(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device, non_blocking=True)

    def _image(self, styled: np.ndarray) -> torch.Tensor:
        return self._up(styled).permute(2, 0, 1)[None].float()

    def _base(self, h: int, w: int) -> torch.Tensor:
        """Pixel coordinates [1, H, W, 2] (x, y) on the device, made once per size."""
        b = self._bases.get((h, w))
        if b is None:
            ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=self.device),
                                    torch.arange(w, dtype=torch.float32, device=self.device), indexing="ij")
            b = self._bases[(h, w)] = torch.stack([xs, ys], -1)[None]
        return b

    @torch.inference_mode()
    def start(self, styled: np.ndarray) -> torch.Tensor:
        return self._image(styled)

    @torch.inference_mode()
    def carry(self, memory: torch.Tensor, styled: np.ndarray, back: np.ndarray, conf: np.ndarray,
              amount: float) -> tuple[Any, np.ndarray]:
        h, w = styled.shape[:2]
        sh, sw = back.shape[:2]
        raw = self._image(styled)
        flow = self._up(back).permute(2, 0, 1)[None]  # [1, 2, sh, sw]
        weight = self._up(conf)[None, None]
        if (sw, sh) != (w, h):
            flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
            flow = flow * torch.tensor([w / sw, h / sh], device=self.device).view(1, 2, 1, 1)
            weight = F.interpolate(weight, size=(h, w), mode="bilinear", align_corners=False)
        at = self._base(h, w) + flow.permute(0, 2, 3, 1)  # x + flow(x), in pixels
        scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=self.device)
        carried = F.grid_sample(memory, at * scale - 1.0, mode="bilinear", padding_mode="border", align_corners=True)
        out = torch.lerp(raw, carried, weight * amount)
        u8 = (out + 0.5).clamp_(0, 255).to(torch.uint8)[0].permute(1, 2, 0).contiguous()
        return out, u8.cpu().numpy()
