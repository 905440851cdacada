"""Read an ONNX graph into numpy constants and a list of compute nodes, so a PyTorch module can take its weights.

Weight-only subgraphs are folded on reading: ``DequantizeLinear`` (per tensor, per axis, or per block as in
opset 21's ``block_size``) and ``Reshape`` of constants become float32 constants, so int8 block-quantised models
such as OpenCV Zoo's SFace read as a plain float network. :func:`repair_graph_inputs` fixes, in memory, graphs that
declare inputs no node reads (onnxruntime and OpenCV refuse those); the file on disk is never changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from maskface.errors import ModelFileError


@dataclass(frozen=True)
class GraphNode:
    """One compute node: its operator, the names of the tensors it reads and writes, and its attributes."""

    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class OnnxGraph:
    """A graph's constants (initialisers and folded weight nodes, as numpy arrays), its remaining compute nodes in
    execution order, and the inputs they read."""

    constants: dict[str, np.ndarray]
    nodes: list[GraphNode]
    inputs: list[str]
    outputs: list[str]

    def constant(self, name: str) -> np.ndarray:
        if name not in self.constants:
            raise KeyError(f"{name!r} is not a constant of the graph")
        return self.constants[name]


def dequantize_linear(x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None = None, axis: int = 1,
                      block_size: int = 0) -> np.ndarray:
    """ONNX ``DequantizeLinear``: ``(x - zero_point) * scale`` in float32, the scale per tensor (scalar), per
    ``axis`` (1-D) or per block of ``block_size`` elements along ``axis`` (same rank as ``x``)."""
    if x.dtype not in (np.int8, np.uint8, np.int16, np.uint16, np.int32):
        raise ValueError(f"cannot dequantise {x.dtype} values")
    scale = np.asarray(scale, np.float32)
    zero_point = np.zeros_like(scale, dtype=x.dtype) if zero_point is None else np.asarray(zero_point)
    if scale.shape != zero_point.shape:
        raise ValueError(f"scale {scale.shape} and zero point {zero_point.shape} differ in shape")
    axis = axis % max(x.ndim, 1)
    if block_size > 0:
        if scale.ndim != x.ndim or scale.shape[axis] != -(-x.shape[axis] // block_size):
            raise ValueError(f"scale {scale.shape} does not hold one value per block of {block_size} "
                             f"along axis {axis} of {x.shape}")
        crop = [slice(None)] * x.ndim
        crop[axis] = slice(0, x.shape[axis])
        scale = np.repeat(scale, block_size, axis=axis)[tuple(crop)]
        zero_point = np.repeat(zero_point, block_size, axis=axis)[tuple(crop)]
    elif scale.ndim == 1 and scale.size > 1:
        shape = [1] * x.ndim
        shape[axis] = scale.size
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    # Integer differences are exact in float32, so this equals the int32 arithmetic of the ONNX reference.
    return (x.astype(np.float32) - zero_point.astype(np.float32)) * scale


def _dequantize(node: GraphNode, values: list[np.ndarray]) -> np.ndarray:
    zero_point = values[2] if len(values) > 2 else None
    return dequantize_linear(values[0], values[1], zero_point, node.attributes.get("axis", 1),
                             node.attributes.get("block_size", 0))


def _reshape(node: GraphNode, values: list[np.ndarray]) -> np.ndarray:
    shape = [int(d) for d in values[1]]
    if not node.attributes.get("allowzero", 0):
        shape = [values[0].shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return values[0].reshape(shape)


#: Operators computed at read time when every input is a constant: the weight-decoding subgraph.
FOLDABLE: dict[str, Callable[[GraphNode, list[np.ndarray]], np.ndarray]] = {
    "DequantizeLinear": _dequantize,
    "Reshape": _reshape,
}


def load_model(source: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    """An ONNX model from a file (or as given), or a :class:`ModelFileError` naming the file and the reason."""
    if isinstance(source, onnx.ModelProto):
        return source
    path = Path(source)
    if not path.is_file():
        raise ModelFileError(str(path), "ONNX model not found")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf raises its own DecodeError
        raise ModelFileError(str(path), f"not an ONNX model: {exc}") from None


def read_onnx_graph(source: str | Path | onnx.ModelProto) -> OnnxGraph:
    """The graph's constants (weights dequantised to float32) and its compute nodes in order."""
    model = load_model(source)
    name = str(source) if not isinstance(source, onnx.ModelProto) else model.graph.name or "<model>"
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes: list[GraphNode] = []
    for proto in graph.node:  # ONNX stores nodes in topological order
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in proto.attribute}
        node = GraphNode(proto.op_type, tuple(proto.input), tuple(proto.output), attributes)
        if node.op_type == "Constant" and "value" in attributes:
            constants[node.outputs[0]] = numpy_helper.to_array(attributes["value"])
        elif node.op_type in FOLDABLE and all(i in constants for i in node.inputs if i):
            try:
                constants[node.outputs[0]] = FOLDABLE[node.op_type](node, [constants[i] for i in node.inputs if i])
            except ValueError as exc:
                raise ModelFileError(name, f"cannot fold {node.op_type} -> {node.outputs[0]}: {exc}") from None
        else:
            nodes.append(node)
    read = {name for node in nodes for name in node.inputs}
    inputs = [i.name for i in graph.input if i.name in read and i.name not in constants]  # dangling ones left out
    return OnnxGraph(constants, nodes, inputs, [o.name for o in graph.output])


def repair_graph_inputs(source: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the model whose graph inputs are only the tensors fed at run time.

    Drops inputs that no node reads (dangling: onnxruntime then demands them, OpenCV cannot pick the image input)
    and inputs that merely repeat an initialiser's name (an old convention that stops onnxruntime from treating
    the weights as constants). Nodes and weights are untouched.
    """
    model = onnx.ModelProto()
    model.CopyFrom(load_model(source))
    graph = model.graph
    read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    initialisers = {t.name for t in graph.initializer}
    keep = [i for i in graph.input if i.name in read and i.name not in initialisers]
    del graph.input[:]
    graph.input.extend(keep)
    return model
