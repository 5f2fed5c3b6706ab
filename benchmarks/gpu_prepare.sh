#!/usr/bin/env bash
# Prepares .dev/gpu/ (git-ignored) for benchmarks/gpu.py on a lent GPU machine, which has PyTorch,
# OpenCV, numpy, PyYAML, onnx and onnxruntime (CPU) but no TensorFlow, no OpenVINO, no PyAV and no
# network.  Run it HERE (a machine with the project's venv and the models):
#
#     REALTIME_MODEL_DIR=../shared/models PYTHON=/path/to/.venv/bin/python bash benchmarks/gpu_prepare.sh
#
# It puts in .dev/gpu/: PyAV's wheel for CPython 3.12 manylinux x86_64 (the version in
# requirements.lock), the three model files, style codes of three shipped styles computed here with
# OpenVINO (codes.npz: the GPU machine cannot compute them), and a short real clip (clip.mp4) if
# one under 5 MB is at hand; then prints the folder's size (what is carried must stay well under 64 MiB).
#
# Then, on the device (the `run` tool: carry [".dev/gpu"], timeout_s 600; the script holds itself
# to 7 minutes and saves after every measurement):
#
#     python -m pip install -q --no-deps --no-index .dev/gpu/av-*.whl && REALTIME_MODEL_DIR=.dev/gpu python benchmarks/gpu.py --out $OUT
#
# and the results come back as $OUT/<gpu-name>-gpu.{json,md} (copy them to benchmarks/results/).
# Smoke test here, on the CPU: python benchmarks/gpu.py --device cpu --quick --out /tmp/gpu-smoke
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
MODELS="${REALTIME_MODEL_DIR:-../shared/models}"
MEDIA="${REALTIME_MEDIA:-../shared/media}"
D=.dev/gpu
mkdir -p "$D"

AV="$(sed -n 's/^av==\([0-9.]*\).*/\1/p' requirements.lock)"
rm -f "$D"/av-*.whl
"$PY" -m pip download -q "av==$AV" --python-version 3.12 --only-binary=:all: --platform manylinux_2_28_x86_64 \
  --no-deps -d "$D"
ls -l "$D"/av-*.whl

for f in magenta_arbitrary-image-stylization-v1-256_int8_prediction_1.tflite \
         magenta_arbitrary-image-stylization-v1-256_fp16_transfer_1.tflite \
         magenta_arbitrary-image-stylization-v1-256_int8_transfer_1.tflite; do
  cp "$MODELS/$f" "$D/$f"
  chmod u+w "$D/$f"
done

"$PY" - "$D" <<'PY'
import sys
from pathlib import Path

import numpy as np

from realtime.io.images import read_image
from realtime.model.backends.openvino_backend import OpenVINOStylePredictor, openvino_core

d = Path(sys.argv[1])
predict = OpenVINOStylePredictor(d / "magenta_arbitrary-image-stylization-v1-256_int8_prediction_1.tflite", openvino_core(None))
codes = {name: predict(read_image(Path("styles") / f"{name}.jpg")) for name in ("waves", "mosaic", "ink")}
np.savez(d / "codes.npz", **codes)
print("codes.npz:", ", ".join(f"{k} (|code| {np.linalg.norm(v):.2f})" for k, v in codes.items()))
PY

CLIP="$MEDIA/content/fox.mp4"
if [ -f "$CLIP" ] && [ "$(stat -c %s "$CLIP")" -lt 5000000 ]; then
  cp "$CLIP" "$D/clip.mp4" && chmod u+w "$D/clip.mp4"
else
  echo "no clip under 5 MB at $CLIP: gpu.py uses its moving test pattern"
fi
du -sh "$D"
ls -l "$D"
