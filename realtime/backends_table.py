"""The backends as plain data: names, what each needs, where and how precisely it runs, and ``auto``.

Why a table, and why here: a backend used to be spelled out in five places (the config's choices,
the factory's two lists, the ``--backend`` help, a config comment), and they drifted.  Now this table
is the one description; the config's allowed values, the CLI's help and ``--model`` mapping,
``auto``'s choices (backend and precision), the missing-dependency message and the precision and device
checks all read it,
and :mod:`realtime.model.backends.registry` joins each row with its lazy factory (a test and an
import-time check keep the two in step).

Why the data is split from the factories: :mod:`realtime.config` is the bottom layer and must not
import :mod:`realtime.model` (that would pull the model code, and with it TensorFlow's import chain,
into every config read).  So this module holds only strings and tuples, imports nothing of the
project, and sits in the bottom layer beside ``config``; the factories live in the model layer.

Adding a backend: a :class:`BackendSpec` row here, a ``@factory("name")`` function in
``model/backends/registry.py``, and the backend class itself.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

#: Every ``engine.device`` kind; ``auto`` = the best the backend has.  ``gpu:N`` (the Nth GPU,
#: counted from 0) is also accepted: see :func:`valid_device` and :func:`device_kind`.
DEVICES: tuple[str, ...] = ("auto", "cpu", "gpu")
DEVICE_HELP = "auto | cpu | gpu | gpu:N (the Nth GPU, from 0, where there are several: torch and tf)"
#: Every ``engine.precision`` value; ``auto`` = bf16 where the backend asks for it on a CPU with AMX
#: (:attr:`BackendSpec.bf16_on_amx`), float32 everywhere else.
PRECISIONS: tuple[str, ...] = ("auto", "float32", "mixed", "bf16")
#: How a device is named in messages, and what it needs beyond the backend.
DEVICE_WORDS: dict[str, str] = {"cpu": "the CPU", "gpu": "a GPU"}
DEVICE_NEEDS: dict[str, str] = {"gpu": "PyTorch with CUDA or MPS: pip install 'realtime[gpu]'"}
#: Python module -> (name in messages, pip requirement).
MODULES: dict[str, tuple[str, str]] = {
    "tensorflow": ("TensorFlow", "tensorflow"),
    "tensorflow_hub": ("TensorFlow Hub", "tensorflow-hub"),
    "openvino": ("OpenVINO", "openvino"),
    "torch": ("PyTorch", "'realtime[gpu]'"),  # the extra: PyPI's torch is the CUDA build on Linux, MPS on macOS
    # the CPU build (CI's); 'realtime[directml]' (Windows, any GPU) and 'realtime[onnx-gpu]' (CUDA)
    # replace it: the onnxruntime packages must not be installed side by side
    "onnxruntime": ("ONNX Runtime", "'realtime[onnx]'"),
}


@dataclass(frozen=True)
class BackendSpec:
    """One backend, as data."""

    name: str
    description: str  # one line, for --help
    needs: tuple[str, ...]  # Python modules that must be importable (keys of MODULES)
    devices: tuple[str, ...]  # where it can run (besides auto)
    precisions: tuple[str, ...]  # --precision values it honours; others run float32 with a warning
    model: str = "lite"  # --model lite (the TF Lite networks) or full (the TF Hub model)
    # auto: "" = never chosen by auto; "cpu" = auto's choice on a CPU, in every mode, where it is
    # installed and honours the precision; "gpu" = auto's choice for a GPU (--device gpu, or an
    # NVIDIA driver present), and the fallback where no "cpu" backend is installed.
    auto: str = ""
    precision_note: str = "it runs float32"  # what happens to a precision it does not honour
    # --precision auto runs bf16 on CPUs that run it natively (FAST_BF16): measured with OpenVINO
    # 3.4x float32 on AMX and 1.9x on an AMD EPYC (Zen 4, AVX512-BF16), but 0.8x on an Intel Xeon
    # with AVX512-BF16 and no AMX; not measured with TensorFlow on AMX.
    bf16_on_amx: bool = False
    # auto picks it for a GPU only where the backend itself sees one (the factory asks it: a GPU
    # framework can be installed as a CPU-only build); and --precision auto is left to the backend,
    # which knows the device it got (torch: half precision on a GPU, float32 on the CPU).
    probes_gpu: bool = False


#: The backends, in the order help and messages list them.
BACKENDS: dict[str, BackendSpec] = {
    s.name: s
    for s in (
        BackendSpec("tf", "the TF Lite weights rebuilt as a TensorFlow graph (GPU, XLA, any size and batch)",
                    needs=("tensorflow",), devices=("cpu", "gpu"), precisions=("float32", "mixed", "bf16"), auto="gpu"),
        BackendSpec("tflite", "both networks on the TF Lite interpreter (CPU; models.transfer fp16 or int8)",
                    needs=("tensorflow",), devices=("cpu",), precisions=("float32",),
                    precision_note="it runs the models.transfer file as it is"),
        BackendSpec("hub", "the full TF Hub model (--model full; about 10x the work per frame)",
                    needs=("tensorflow", "tensorflow_hub"), devices=("cpu", "gpu"), precisions=("float32", "mixed"),
                    model="full"),
        BackendSpec("openvino", "the TF Lite files on OpenVINO (CPU, no TensorFlow: fast start, small memory, bf16)",
                    needs=("openvino",), devices=("cpu",), precisions=("float32", "bf16"), auto="cpu", bf16_on_amx=True),
        BackendSpec("torch", "the TF Lite weights on PyTorch (NVIDIA CUDA or Apple MPS GPUs in half precision, uint8 "
                    "across the bus, CUDA graphs; the CPU as a last resort); no TensorFlow",
                    needs=("torch",), devices=("cpu", "gpu"), precisions=("float32", "mixed", "bf16"), auto="gpu",
                    probes_gpu=True),
        BackendSpec("onnx", "the TF Lite weights as an ONNX graph on ONNX Runtime with the best provider present "
                    "(TensorRT, CUDA, DirectML on Windows for any GPU, CoreML, CPU; float16 with float32 norms on a GPU); "
                    "no TensorFlow, no PyTorch",
                    needs=("onnxruntime",), devices=("cpu", "gpu"), precisions=("float32", "mixed"), auto="gpu",
                    precision_note="it runs float32 (its half precision is float16: --precision mixed)", probes_gpu=True),
    )
}
AUTO_DESCRIPTION = ("torch where PyTorch is installed and sees a CUDA or Apple MPS GPU; onnx where PyTorch does not "
                    "but ONNX Runtime has a CUDA, TensorRT or DirectML provider; else openvino on a CPU, for "
                    "live, video and images alike (no TensorFlow: about 1 s to the first frame instead of 4-10 s, a "
                    "third of the memory); tf for --device gpu or where an NVIDIA driver is loaded without a "
                    "CUDA-enabled PyTorch, and where OpenVINO is not installed")
PRECISION_DESCRIPTION = ("auto (default: half precision with torch and onnx on a GPU; bf16 with openvino on CPUs that run it natively "
                         "(AMX: about 3x faster; AMD's AVX512-BF16: about 1.9x) at about 0.002 mean error on photos; float32 elsewhere) | float32 (full precision: "
                         "opts out of both) | mixed (GPU half precision: float16) | bf16 (bfloat16: on a GPU with torch, "
                         "on the CPU with tf and openvino: lower precision, slower on Intel CPUs without AMX)")
#: The values ``engine.backend`` takes.
BACKEND_CHOICES: tuple[str, ...] = ("auto", *BACKENDS)


_GPU_N = re.compile(r"gpu:(\d{1,3})")


def valid_device(device: str) -> bool:
    """An ``engine.device`` value: one of :data:`DEVICES`, or ``gpu:N``."""
    return device in DEVICES or bool(_GPU_N.fullmatch(str(device)))


def device_kind(device: str) -> str:
    """``auto``, ``cpu`` or ``gpu`` (``gpu:N`` is a GPU): what the table's ``devices`` list."""
    return "gpu" if _GPU_N.fullmatch(str(device)) else device


def device_index(device: str) -> Optional[int]:
    """The N of ``gpu:N``; None for any other value (the backend's default GPU)."""
    m = _GPU_N.fullmatch(str(device))
    return int(m.group(1)) if m else None


def _check_table() -> None:
    """A malformed row is a programming error: fail at import, naming it."""
    for s in BACKENDS.values():
        bad = [v for v in s.devices if v not in DEVICES[1:]] + [v for v in s.precisions if v not in PRECISIONS[1:]]
        bad += [m for m in s.needs if m not in MODULES]
        if bad or s.model not in ("lite", "full") or s.auto not in ("", "cpu", "gpu") or "float32" not in s.precisions:
            raise RuntimeError(f"backends_table: backend '{s.name}' has unknown values {bad or [s.model, s.auto]}")


_check_table()


def installed(module: str) -> bool:
    """``module`` can be imported (found without importing it: TensorFlow takes seconds)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def missing_modules(name: str) -> list[str]:
    """The modules backend ``name`` needs that are not installed."""
    return [m for m in BACKENDS[name].needs if not installed(m)]


def choose_auto(device: str, precision: str, gpu_present: bool, maybe_gpu: bool = False,
                sees_gpu: Callable[[str], bool] = lambda name: False) -> str:
    """``auto``'s backend, the same for live, video and still images.

    1. Where a GPU may be there (``--device gpu[:N]``, or with ``--device auto`` an NVIDIA driver
       loaded or ``maybe_gpu``: an Apple-silicon Mac, a GPU build of ONNX Runtime installed), the
       first installed "gpu" row that probes and whose framework sees a GPU (``sees_gpu(name)``:
       asked only here, so a CPU-only machine never imports PyTorch to decide): ``torch`` first (the
       GPU backend: half precision, CUDA graphs), then ``onnx`` (where PyTorch is missing or sees
       no GPU but ONNX Runtime has a GPU provider: DirectML on Windows, CUDA).
    2. On a CPU (no ``--device gpu``, and with ``--device auto`` no NVIDIA driver loaded) the first
       installed "cpu" one that honours the precision, or any with ``mixed`` (a GPU precision)
       (``openvino``: it never imports TensorFlow, which costs 4-10 s to the first frame and 600 MB).
    3. The first installed "gpu" one that does not probe (``tf``: the GPU path where PyTorch is
       missing or sees no GPU; TensorFlow then says whether it sees one).
    4. With ``--device gpu``, a probing one that is installed (its "sees no GPU" is the error);
       else any installed auto candidate (the only runtime there), else ``tf`` (whose missing
       module is then the error).  ``gpu_present`` is asked without importing any framework."""
    usable = [s for s in BACKENDS.values() if s.auto and not missing_modules(s.name)]
    kind = device_kind(device)
    on_gpu = kind == "gpu" or (kind == "auto" and gpu_present)
    if on_gpu or (kind == "auto" and maybe_gpu):
        for s in usable:
            if s.auto == "gpu" and s.probes_gpu and sees_gpu(s.name):
                return s.name
    for s in usable:
        # "mixed" is a GPU precision no CPU honours: on a CPU it is the CPU backend's float32 (with
        # its warning), not TensorFlow's float32 at a quarter of the speed after a 4 s import
        if s.auto == "cpu" and not on_gpu and (precision in ("auto", "mixed") or precision in s.precisions):
            return s.name
    for s in usable:
        if s.auto == "gpu" and not s.probes_gpu:
            return s.name
    if kind == "gpu":
        for s in usable:
            if s.auto == "gpu":
                return s.name
    if usable:
        return usable[0].name
    return next(s.name for s in BACKENDS.values() if s.auto == "gpu" and not s.probes_gpu)


#: ``cpu_bf16`` values (see ``model.backends.base.cpu_bf16``) where ``--precision auto`` runs bf16,
#: and how the start-up line says why.
FAST_BF16: dict[str, str] = {
    "amx": "this CPU has AMX",
    "zen": "this AMD CPU runs AVX512-BF16 natively",
}
#: How much faster openvino's bf16 ran than its float32 (README: 3.4x on an AMX Xeon, 1.7-1.9x on a
#: 2-core AMD EPYC Zen 4 at 384x384-640x480).
BF16_GAIN: dict[str, str] = {"amx": "about 3x", "zen": "about 1.7-1.9x"}


def choose_precision(name: str, precision: str, cpu_bf16: str) -> str:
    """The precision backend ``name`` runs: ``auto`` is bf16 where the row says so and the CPU runs
    bf16 natively (``cpu_bf16`` in :data:`FAST_BF16`: AMX, or an AMD CPU with AVX512-BF16), float32 otherwise; any
    other value is kept (the factory then checks it against the row).  A row that probes its GPU
    keeps ``auto``: the backend resolves it for the device it got (:attr:`BackendSpec.probes_gpu`)."""
    if precision != "auto" or BACKENDS[name].probes_gpu:
        return precision
    return "bf16" if BACKENDS[name].bf16_on_amx and cpu_bf16 in FAST_BF16 else "float32"


def precision_words(asked: str, runs: str, cpu_bf16: str, name: str) -> str:
    """How the start-up line says the precision and why: ``bf16 (auto: this CPU has AMX; ...)``."""
    if asked != "auto":
        return runs
    if BACKENDS[name].probes_gpu:
        if BACKENDS[name].precisions == ("float32",):
            return f"{runs} (auto: the {name} backend runs float32)"
        return f"{runs} (auto: {'the CPU runs float32' if runs == 'float32' else 'half precision on the GPU'})"
    if runs == "bf16":
        return f"bf16 (auto: {FAST_BF16[cpu_bf16]}; lower precision, --precision float32 for full)"
    if not BACKENDS[name].bf16_on_amx:
        return "float32 (auto)"
    why = {"avx512": "AVX512-BF16 without AMX: bf16 would be slower", "": "no bf16 instructions"}.get(cpu_bf16, "")
    return f"float32 (auto{': ' + why if why else ''})"


def backend_help() -> str:
    """The ``--backend`` help text."""
    rows = "; ".join(f"{s.name}: {s.description}" for s in BACKENDS.values())
    return f"{' | '.join(BACKEND_CHOICES)} (default auto: {AUTO_DESCRIPTION}). {rows}"


def precision_help() -> str:
    """The ``--precision`` help text."""
    return PRECISION_DESCRIPTION


def backends_for_model(model: str) -> tuple[str, ...]:
    """The ``--backend`` values that ``--model lite|full`` allows, the implied one first."""
    names = tuple(s.name for s in BACKENDS.values() if s.model == model)
    return ("auto", *names) if model == "lite" else names


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def missing_message(name: str, missing: list[str]) -> str:
    """One line: which modules are missing, how to install them, and which backend would run."""
    what = _join([MODULES[m][0] for m in missing])
    pip = " ".join(MODULES[m][1] for m in missing)
    ready = [s.name for s in BACKENDS.values() if s.name != name and not missing_modules(s.name)]
    if ready:
        hint = _join([f"--backend {b}" for b in ready])
    else:
        other = next((s for s in BACKENDS.values() if not set(s.needs) & set(missing)), None)
        hint = f"pip install {' '.join(MODULES[m][1] for m in other.needs)} and use --backend {other.name}" if other else ""
    verb = "is" if len(missing) == 1 else "are"
    return f"--backend {name} needs {what}, which {verb} not installed (pip install {pip}{', or ' + hint if hint else ''})"


def device_message(name: str, device: str) -> str:
    """One line for a device the backend cannot use, naming the backends that can (those that
    probe their GPU first: ``torch`` is the GPU backend to install)."""
    device = device_kind(device)
    rows = sorted(BACKENDS.values(), key=lambda s: not s.probes_gpu)
    able = [s.name for s in rows if device in s.devices] or ["(none)"]
    notes = ([f"or {_join(able[1:])}"] if able[1:] else []) + ([DEVICE_NEEDS[device]] if device in DEVICE_NEEDS else [])
    paren = f" ({'; '.join(notes)})" if notes else ""
    where = _join([DEVICE_WORDS[d] for d in BACKENDS[name].devices])
    return f"--device {device} needs the {able[0]} backend{paren}; {name} runs on {where}"


def precision_message(name: str, precision: str) -> str:
    """One warning line for a precision the backend does not honour."""
    spec = BACKENDS[name]
    return f"--precision {precision} is not for the {name} backend (it takes {'|'.join(spec.precisions)}); {spec.precision_note}"


def variant_names() -> tuple[str, ...]:
    """Every benchmark variant (``stylize bench --backends``), from the table: each backend at
    float32, and with each other precision it honours (``openvino-bf16``, ``tf-mixed``); tf with
    XLA, tflite's int8 file.  Here, not in :mod:`realtime.bench`, because the command line's help
    lists them and every command builds it: importing the benchmark module cost start-up 30 ms."""
    names: list[str] = []
    for spec in BACKENDS.values():
        names += [spec.name, *(f"{spec.name}-{p}" for p in spec.precisions if p != "float32")]
    return (*names, "tf-xla", "tf-xla-mixed", "tf-mixed-xla", "tflite-fp16", "tflite-int8")
