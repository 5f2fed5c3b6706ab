"""benchmarks/gpu.py, the one prepared command for a lent GPU machine, as a CPU smoke test: it runs
every step at tiny sizes and writes its results, importing neither TensorFlow, OpenVINO nor the web
server (the GPU machine has none of them: they are blocked here the way they are missing there)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import MEDIA, REQUIRED_FILES, ROOT

pytest.importorskip("torch")
pytest.importorskip("av")

#: gpu.py run in a process where the modules the GPU machine lacks cannot be imported.
BLOCKED = ("import sys, runpy; sys.modules.update(tensorflow=None, openvino=None, starlette=None, uvicorn=None); "
           "sys.argv = ['benchmarks/gpu.py', *sys.argv[1:]]; runpy.run_path('benchmarks/gpu.py', run_name='__main__')")


#: Style codes as gpu_prepare.sh writes them (OpenVINO's), else random ones; in a child process, as
#: OpenVINO leaves a thread pool behind.
CODES = ("import sys, numpy as np\n"
         "try:\n"
         "    from realtime.io.images import read_image\n"
         "    from realtime.model.backends.openvino_backend import OpenVINOStylePredictor, openvino_core\n"
         "    p = OpenVINOStylePredictor(__import__('pathlib').Path(sys.argv[2]), openvino_core(None))\n"
         "    codes = {'waves': p(read_image('styles/waves.jpg'))}\n"
         "except ImportError:\n"
         "    codes = {'random': np.random.default_rng(0).normal(0, 0.5, 100).astype(np.float32)}\n"
         "np.savez(sys.argv[1], **codes)\n")


def _codes(models_dir, path):
    subprocess.run([sys.executable, "-c", CODES, str(path), str(models_dir / REQUIRED_FILES[0])], cwd=ROOT, check=True,
                   timeout=60)
    return path


def test_the_gpu_benchmark_runs_on_the_cpu_without_tensorflow_openvino_or_the_web_server(models_dir, tmp_path):
    codes = _codes(models_dir, tmp_path / "codes.npz")
    clip = MEDIA / "content" / "fox.mp4"  # the real clip gpu_prepare.sh carries, where it is at hand
    r = subprocess.run([sys.executable, "-c", BLOCKED, "--device", "cpu", "--quick", "--out", str(tmp_path / "out"),
                        "--codes", str(codes), "--clip", str(clip), "--model-dir", str(models_dir)],
                       cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    (result,) = (tmp_path / "out").glob("*-gpu.json")
    assert (tmp_path / "out" / result.name.replace(".json", ".md")).is_file()
    data = json.loads(result.read_text())
    steps = data["steps"]
    assert list(steps)[:2] == ["network", "video"] and {"live", "quality", "onnx", "profile"} <= set(steps)
    failed = {k: v.get("error") or v.get("skipped") for k, v in steps.items() if v.get("error") or v.get("skipped")}
    assert not failed, failed
    assert all(row.get("stylize_fps") for row in steps["network"]["rows"])
    assert [row["audio"] for row in steps["video"]["rows"]] == ["copied"] * 4 and steps["video"]["naive"]
    assert steps["live"]["ours"]["frames"] == 20 and steps["quality"]["rows"][0]["precision"] == "float32"
    assert steps["onnx"]["rows"][0]["fps"] > 0 and steps["onnx"]["max_abs_vs_torch_float32"] <= 2e-3
    half = steps["onnx"]["rows"][1]  # the float16 graph (norms in float32) beside it
    assert half["precision"] == "mixed" and half["fps"] > 0 and half["x_float32"] > 0
    assert "float16, norms float32" in steps["onnx"]["stylizers"]["mixed"]
    assert steps["onnx"]["max_abs_vs_torch_float32_mixed"] <= 5e-2 and steps["onnx"]["mean_abs_vs_torch_float32_mixed"] <= 3e-3
    assert [t["what"] for t in data["targets"]][0] == "network alone 1280x720, batched, half precision"
    assert "network alone 1920x1080" in r.stdout and "wrote " in r.stdout
