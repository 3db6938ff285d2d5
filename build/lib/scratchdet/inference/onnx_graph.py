"""Exact rewrites of an exported ONNX graph (needs ``onnx``, not torch).

:func:`fold_pads` merges a zero ``Pad`` with constant pads into the ``Conv`` it feeds (the
convolution's own ``pads``), as ONNX Runtime's own optimiser does for a float graph. Done in
the file, the graph has no ``Pad`` between a quantised activation and its convolution either
(:mod:`scratchdet.inference.quantize`), where ONNX Runtime no longer fuses it: the padded
tensor would be dequantised, padded in float and quantised again.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializers and ``Constant`` node outputs of ``graph``, by name."""
    found = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            found[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return found


def _evaluate(name: str, producers: dict[str, onnx.NodeProto],
              constants: dict[str, np.ndarray], depth: int = 12) -> np.ndarray | None:
    """The value of ``name`` when it is computed from constants only (the TorchScript
    exporter writes a constant padding as a chain of Reshape/Slice/Cast of constants), cached
    in ``constants``; ``None`` when it depends on the input or on a subgraph."""
    if name in constants:
        return constants[name]
    node = producers.get(name)
    if node is None or depth == 0 or any(a.type == a.GRAPH for a in node.attribute):
        return None
    values = [_evaluate(i, producers, constants, depth - 1) if i else None for i in node.input]
    if any(v is None for v, i in zip(values, node.input, strict=True) if i):
        return None
    from onnx.reference import ReferenceEvaluator

    inputs = [i for i in node.input if i]
    outputs = ReferenceEvaluator(node).run(None, dict(zip(inputs, (v for v in values
                                                                if v is not None), strict=True)))
    constants.update(zip(node.output, (np.asarray(o) for o in outputs), strict=True))
    return constants[name]


def _conv_pads(pad: onnx.NodeProto, consumers: list[onnx.NodeProto],
               constants: dict[str, np.ndarray]) -> list[int] | None:
    """The ``[top, left, bottom, right]`` pads that ``pad`` adds to its one ``Conv`` consumer,
    or ``None`` when it cannot be folded (mode, value, pads on batch/channels, several users)."""
    modes = [a.s for a in pad.attribute if a.name == "mode"]
    if (len(consumers) != 1 or consumers[0].op_type != "Conv" or (modes and modes[0] != b"constant")
            or len(pad.input) < 2 or pad.input[1] not in constants):
        return None
    if len(pad.input) > 2 and pad.input[2]:
        value = constants.get(pad.input[2])
        if value is None or np.any(value != 0):
            return None
    if any(a.name == "auto_pad" and a.s not in (b"", b"NOTSET") for a in consumers[0].attribute):
        return None
    pads = [int(v) for v in constants[pad.input[1]]]
    if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
        return None
    return [pads[2], pads[3], pads[6], pads[7]]


def fold_pads(model: onnx.ModelProto) -> int:
    """Fold every foldable ``Pad -> Conv`` pair of ``model``'s main graph in place (the
    results are identical); returns how many were folded."""
    graph = model.graph
    constants = _constants(graph)
    producers = {o: node for node in graph.node for o in node.output}
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    folded = []
    for node in graph.node:
        if node.op_type != "Pad" or node.output[0] in outputs:
            continue
        for name in node.input[1:]:
            if name:
                _evaluate(name, producers, constants)
        extra = _conv_pads(node, users.get(node.output[0], []), constants)
        if extra is None:
            continue
        conv = users[node.output[0]][0]
        old = [a for a in conv.attribute if a.name == "pads"]
        base = list(old[0].ints) if old else [0, 0, 0, 0]
        for a in old:
            conv.attribute.remove(a)
        conv.attribute.append(helper.make_attribute(
            "pads", [b + e for b, e in zip(base, extra, strict=True)]))
        conv.input[0] = node.input[0]
        folded.append(node)
    for node in folded:
        graph.node.remove(node)
    if folded:
        drop_dead(graph)
    return len(folded)


def drop_dead(graph: onnx.GraphProto) -> None:
    """Remove the nodes and initializers whose values nothing reads (the padding arithmetic
    left behind by :func:`fold_pads`)."""
    while True:
        read = {o.name for o in graph.output}
        for node in graph.node:
            read.update(node.input)
            for attr in (a for a in node.attribute if a.type == a.GRAPH):
                read.update(name for sub in attr.g.node for name in sub.input)
        dead = [n for n in graph.node if not any(o in read for o in n.output)]
        for init in [i for i in graph.initializer if i.name not in read]:
            graph.initializer.remove(init)
        if not dead:
            return
        for node in dead:
            graph.node.remove(node)
