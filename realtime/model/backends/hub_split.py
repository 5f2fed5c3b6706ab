"""Splitting the TF Hub SavedModel's one call into its two stages: style -> code, (content, code) -> image.

Why: the published SavedModel exposes only ``(content, style) -> image``, so called as published its
Inception-v3 style network runs on every frame.  Magenta's ``export_hub.py`` builds the whole TF1 graph
inside ``tf.compat.v1.wrap_function`` and saves the pruned call, so the loaded call's graph still holds
every op under Magenta's names: the 100-number style code is the op named exactly ``Conv/BiasAdd``
(``InceptionV3/Mixed_6e/concat`` -> ``bottleneck/Mean`` -> ``Conv/Conv2D`` -> ``Conv/BiasAdd``, no
``style_prediction/`` prefix).  Suffix matching is wrong: ``style_params/.../StyleNorm/Conv/BiasAdd``
ends the same way.  Pruning the loaded graph (what ``wrap_function`` itself does) at that tensor gives
two functions that reproduce the two-input call exactly.

The pruning uses TensorFlow internals (``WrappedFunction`` over a loaded function's graph).  They are
kept to :func:`prune_function` alone, which has its own test, so a TensorFlow upgrade that moves
them breaks one small function with a clear message instead of the backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

CODE_SIZE = 100
CODE_OP = "Conv/BiasAdd"
BOTTLENECK_OP = "bottleneck/Mean"


class SplitNotFound(Exception):
    """The SavedModel does not have the structure the split needs (the message says what is missing)."""


@dataclass(frozen=True)
class HubSplit:
    """The two stages of a Magenta-shaped SavedModel, as TF callables.

    ``style_fn(style [N,H,W,3] float32) -> [code [N,1,1,100]]`` and
    ``image_fn(content [B,H,W,3] float32, code [B,1,1,100]) -> [image [B,H,W,3]]`` (lists, as pruned).
    """

    style_fn: Callable[..., Any]
    image_fn: Callable[..., Any]
    where: str  # which function of the module held the graph (for the log)


def prune_function(fn: Any, feeds: Sequence[Any], fetches: Sequence[Any]) -> Callable[..., Any]:
    """A new function over ``fn``'s graph from ``feeds`` to ``fetches`` (any tensors of that graph).

    The loaded function's variables are captures of its graph; the pruned function keeps them, so no
    weights are copied.  This is the only place that touches TensorFlow internals.
    """
    try:
        from tensorflow.python.eager import wrap_function as wf
    except ImportError as exc:  # moved in a later TensorFlow
        raise SplitNotFound(f"this TensorFlow has no wrap_function internals ({exc})") from None
    wrapped = wf.WrappedFunction(fn.graph, wf.VariableHolder(share_variables=True))
    return wrapped.prune(feeds=list(feeds), fetches=list(fetches))


def _candidates(module: Any) -> Iterator[tuple[str, Any]]:
    """Functions whose graph may hold Magenta's ops: the loaded ``__call__`` (where TF 2 keeps the
    pruned call's own graph) and the serving signatures (where an older exporter may have put it)."""
    call = getattr(module, "__call__", None)
    if hasattr(call, "graph"):
        yield "__call__", call
    for i, cf in enumerate(getattr(call, "concrete_functions", None) or ()):
        yield f"__call__[{i}]", cf
    for name, sig in dict(getattr(module, "signatures", None) or {}).items():
        if hasattr(sig, "graph"):
            yield f"signature {name}", sig


def _code_tensor(graph: Any) -> Any:
    """The style code: the op named exactly ``Conv/BiasAdd`` shaped [N,1,1,100], or failing the name,
    the one such op fed (through its convolution) by ``bottleneck/Mean``."""
    def shaped(op: Any) -> bool:
        shape = op.outputs[0].shape if op.outputs else None
        return shape is not None and shape.rank == 4 and list(shape)[1:] in ([1, 1, CODE_SIZE], [None, None, CODE_SIZE])

    try:
        op = graph.get_operation_by_name(CODE_OP)
        if shaped(op):
            return op.outputs[0]
    except KeyError:
        pass
    for op in graph.get_operations():
        if op.type == "BiasAdd" and shaped(op):
            conv = op.inputs[0].op
            if any(t.op.name.endswith(BOTTLENECK_OP) for t in conv.inputs):
                return op.outputs[0]
    return None


def split_hub_module(module: Any) -> HubSplit:
    """Find Magenta's style code inside the module's call and prune the two stages around it."""
    looked = []
    for where, fn in _candidates(module):
        graph = fn.graph
        code = _code_tensor(graph)
        inputs = [t for t in fn.inputs if t.dtype.name == "float32" and t.shape.rank == 4][:2]
        if code is None or len(inputs) != 2:
            looked.append(where)
            continue
        content, style = inputs  # the call's order: (content, style)
        output = fn.outputs[0]
        return HubSplit(
            style_fn=prune_function(fn, [style], [code]),
            image_fn=prune_function(fn, [content, code], [output]),
            where=where,
        )
    places = ", ".join(looked) or "no function graph"
    raise SplitNotFound(f"no {CODE_SIZE}-number style code ('{CODE_OP}' after '{BOTTLENECK_OP}') in {places}")
