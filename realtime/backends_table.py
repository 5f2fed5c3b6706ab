"""The backends as plain data: names, what each needs, where and how precisely it runs, and ``auto``.

Why a table, and why here: a backend used to be spelled out in five places (the config's choices,
the factory's two lists, the ``--backend`` help, a config comment), and they drifted.  Now this table
is the one description; the config's allowed values, the CLI's help and ``--model`` mapping,
``auto``'s choice, the missing-dependency message and the precision and device checks all read it,
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
import sys
from dataclasses import dataclass

#: Every ``engine.device`` value; ``auto`` = the best the backend has.
DEVICES: tuple[str, ...] = ("auto", "cpu", "gpu")
#: Every ``engine.precision`` value.
PRECISIONS: tuple[str, ...] = ("float32", "mixed", "bf16")
#: How a device is named in messages, and what it needs beyond the backend.
DEVICE_WORDS: dict[str, str] = {"cpu": "the CPU", "gpu": "a GPU"}
DEVICE_NEEDS: dict[str, str] = {"gpu": "TensorFlow with CUDA"}
#: Python module -> (name in messages, pip requirement).
MODULES: dict[str, tuple[str, str]] = {
    "tensorflow": ("TensorFlow", "tensorflow"),
    "tensorflow_hub": ("TensorFlow Hub", "tensorflow-hub"),
    "openvino": ("OpenVINO", "openvino"),
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
    # auto: "" = never chosen by auto; "default" = auto's choice where it is installed; "still" =
    # auto's choice for still images on a CPU (start-up is all the work of one image), and the
    # fallback where no "default" backend is installed.
    auto: str = ""
    precision_note: str = "it runs float32"  # what happens to a precision it does not honour


#: The backends, in the order help and messages list them.
BACKENDS: dict[str, BackendSpec] = {
    s.name: s
    for s in (
        BackendSpec("tf", "the TF Lite weights rebuilt as a TensorFlow graph (GPU, XLA, any size and batch)",
                    needs=("tensorflow",), devices=("cpu", "gpu"), precisions=PRECISIONS, auto="default"),
        BackendSpec("tflite", "both networks on the TF Lite interpreter (CPU; models.transfer fp16 or int8)",
                    needs=("tensorflow",), devices=("cpu",), precisions=("float32",),
                    precision_note="it runs the models.transfer file as it is"),
        BackendSpec("hub", "the full TF Hub model (--model full; about 10x the work per frame)",
                    needs=("tensorflow", "tensorflow_hub"), devices=("cpu", "gpu"), precisions=("float32", "mixed"),
                    model="full"),
        BackendSpec("openvino", "the TF Lite files on OpenVINO (CPU, no TensorFlow: fast start, small memory, bf16)",
                    needs=("openvino",), devices=("cpu",), precisions=("float32", "bf16"), auto="still"),
    )
}
AUTO_DESCRIPTION = "openvino for still images on a CPU when installed, and wherever TensorFlow is not; else tf"
#: The values ``engine.backend`` takes.
BACKEND_CHOICES: tuple[str, ...] = ("auto", *BACKENDS)


def _check_table() -> None:
    """A malformed row is a programming error: fail at import, naming it."""
    for s in BACKENDS.values():
        bad = [v for v in s.devices if v not in DEVICES[1:]] + [v for v in s.precisions if v not in PRECISIONS]
        bad += [m for m in s.needs if m not in MODULES]
        if bad or s.model not in ("lite", "full") or s.auto not in ("", "default", "still") or "float32" not in s.precisions:
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


def choose_auto(fixed_size: bool, device: str, precision: str, gpu_present: bool) -> str:
    """``auto``'s backend: the "still" one for still images on a CPU-only machine when it is
    installed and honours the device and precision (one image is all start-up, and it starts
    seconds sooner), else the first installed "default" one, else any installed auto candidate
    (the only runtime there), else the first "default" one (whose missing module is then the error)."""
    usable = [s for s in BACKENDS.values() if s.auto and not missing_modules(s.name)]
    for s in usable:
        if (s.auto == "still" and not fixed_size and not gpu_present
                and (device == "auto" or device in s.devices) and precision in s.precisions):
            return s.name
    for s in usable:
        if s.auto == "default":
            return s.name
    if usable:
        return usable[0].name
    return next(s.name for s in BACKENDS.values() if s.auto == "default")


def backend_help() -> str:
    """The ``--backend`` help text."""
    rows = "; ".join(f"{s.name}: {s.description}" for s in BACKENDS.values())
    return f"{' | '.join(BACKEND_CHOICES)} (default auto: {AUTO_DESCRIPTION}). {rows}"


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
    """One line for a device the backend cannot use, naming the backends that can."""
    able = [s.name for s in BACKENDS.values() if device in s.devices] or ["(none)"]
    notes = ([f"or {_join(able[1:])}"] if able[1:] else []) + ([DEVICE_NEEDS[device]] if device in DEVICE_NEEDS else [])
    paren = f" ({'; '.join(notes)})" if notes else ""
    where = _join([DEVICE_WORDS[d] for d in BACKENDS[name].devices])
    return f"--device {device} needs the {able[0]} backend{paren}; {name} runs on {where}"


def precision_message(name: str, precision: str) -> str:
    """One warning line for a precision the backend does not honour."""
    spec = BACKENDS[name]
    return f"--precision {precision} is not for the {name} backend (it takes {'|'.join(spec.precisions)}); {spec.precision_note}"
