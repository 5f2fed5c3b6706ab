"""The project's own TF Lite reader (realtime/model/tflite_file.py) reads exactly what TensorFlow's
interpreter reads, so the ``tf`` and ``torch`` backends share one weight reader that needs no
TensorFlow, and the ``tf`` backend's pictures are unchanged."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import REQUIRED_FILES, ROOT

from realtime.model.tflite_file import TFLiteFile


def _interpreter(path):
    from realtime.model.backends.tflite_util import make_interpreter

    return make_interpreter(path, 1)


def test_every_stored_tensor_equals_the_interpreters(models_dir):
    """Names, shapes and the bytes of every constant, for the fp16 transfer file and the int8
    style file; DEQUANTIZE outputs (float16 -> float32) read through their op."""
    for f in (REQUIRED_FILES[1], REQUIRED_FILES[0]):
        ours = TFLiteFile(models_dir / f)
        it = _interpreter(models_dir / f)
        details = it.get_tensor_details()
        assert [d["name"] for d in details] == [t.name for t in ours.tensors]
        checked = 0
        for d, t in zip(details, ours.tensors):
            assert tuple(d["shape"]) == t.shape, t.name
            raw = ours.raw(t)
            if raw is None:
                continue
            ref = it.get_tensor(d["index"])
            assert raw.dtype == ref.dtype and np.array_equal(raw, ref), t.name
            checked += 1
        assert checked > 50
    fp16 = TFLiteFile(models_dir / REQUIRED_FILES[1])
    name = "transformer/contract/conv1/weights"
    deq = next(op for op in fp16.ops if op.code == 6 and fp16.tensors[op.inputs[0]].name == name)
    out = fp16.tensors[deq.outputs[0]].name
    assert fp16.tensor(out).dtype == np.float32 and np.array_equal(fp16.tensor(out), fp16.tensor(name))
    with pytest.raises(ValueError, match="computed"):
        fp16.tensor("transformer/expand/conv3/conv/Sigmoid")


def test_transfer_weights_equal_the_interpreter_read(models_dir):
    """``TransferWeights.from_tflite`` (the reader) equals what it read through
    ``tf.lite.Interpreter.get_tensor`` before: every array bit for bit."""
    from realtime.model.backends import transfer_net
    from realtime.model.backends.transfer_net import TransferWeights

    path = models_dir / REQUIRED_FILES[1]
    ours = TransferWeights.from_tflite(path)
    it = _interpreter(path)
    index = {d["name"]: d["index"] for d in it.get_tensor_details()}

    class Interpreted:  # the old reader: TensorFlow's interpreter behind the same interface
        def __init__(self, _path):
            pass

        def tensor(self, name):
            return np.asarray(it.get_tensor(index[name]), np.float32)

    orig = transfer_net.TFLiteFile
    transfer_net.TFLiteFile = Interpreted
    try:
        ref = TransferWeights.from_tflite(path)
    finally:
        transfer_net.TFLiteFile = orig
    assert ours.convs.keys() == ref.convs.keys() and ours.biases.keys() == ref.biases.keys()
    for k in ref.convs:
        assert ours.convs[k].dtype == np.float32 and np.array_equal(ours.convs[k], ref.convs[k]), k
    for k in ref.biases:
        assert np.array_equal(ours.biases[k], ref.biases[k]), k
    for a in ("gamma_w", "gamma_b", "beta_w", "beta_b"):
        assert np.array_equal(getattr(ours, a), getattr(ref, a)), a
    assert ours.channels == ref.channels and ours.eps == ref.eps


def test_patched_sizes_read_back_and_nothing_else_moves(models_dir):
    """``patch_transfer_size`` (no TensorFlow now) rewrites the three upsampling constants in place."""
    from realtime.model.backends.tflite_util import RESIZE_SIZE_TENSORS, patch_transfer_size

    data = (models_dir / REQUIRED_FILES[1]).read_bytes()
    patched = patch_transfer_size(data, 96, 160)
    assert len(patched) == len(data) and sum(a != b for a, b in zip(data, patched)) <= 3 * 8
    f = TFLiteFile(patched)
    for name, div in RESIZE_SIZE_TENSORS:
        assert f.raw(f.by_name[name]).tolist() == [96 // div, 160 // div]
    with pytest.raises(ValueError, match="not a TF Lite file"):
        TFLiteFile(b"not a model at all")


def test_reading_weights_never_imports_tensorflow(models_dir):
    code = ("import sys; from realtime.model.backends.transfer_net import TransferWeights; "
            f"w = TransferWeights.from_tflite(__import__('pathlib').Path({str(models_dir / REQUIRED_FILES[1])!r})); "
            "print(len(w.convs), 'tensorflow' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["16", "False"]  # 3 contract, 10 residual, 3 expand convolutions
