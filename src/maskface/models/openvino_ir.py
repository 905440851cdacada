"""Reader for OpenVINO's IR (versions 10 and 11): the ``.xml`` graph and the ``.bin`` constants it points into.

The XML lists layers (id, name, type, op-set version, ``<data>`` attributes, input and output ports with their
dimensions) and edges from an output port to an input port; each ``Const`` layer names an element type, shape,
byte offset and byte size in the ``.bin`` file. This module turns both files into plain Python and numpy values
and checks that they are consistent; what the graph computes is for the caller (e.g. :mod:`maskface.models.omz_reid`).
"""

from __future__ import annotations

import heapq
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskface.errors import ModelFileError

SUPPORTED_VERSIONS = (10, 11)

#: IR element types that map to a numpy dtype (all little-endian).
ELEMENT_TYPES = {
    "f16": "<f2", "f32": "<f4", "f64": "<f8",
    "i8": "i1", "i16": "<i2", "i32": "<i4", "i64": "<i8",
    "u8": "u1", "u16": "<u2", "u32": "<u4", "u64": "<u8",
    "boolean": "?",
}


@dataclass(frozen=True)
class Port:
    """One input or output of a layer; a dynamic dimension is -1."""

    id: int
    shape: tuple[int, ...]
    precision: str = ""


@dataclass(frozen=True)
class Layer:
    id: int
    name: str
    type: str
    version: str
    data: dict[str, str]
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]


@dataclass(frozen=True)
class Edge:
    """Data flows from output port ``from_port`` of ``from_layer`` to input port ``to_port`` of ``to_layer``."""

    from_layer: int
    from_port: int
    to_layer: int
    to_port: int


@dataclass
class IRGraph:
    """A parsed IR: layers by id, edges, and each ``Const`` layer's value as stored (e.g. float16)."""

    source: str
    name: str
    version: int
    layers: dict[int, Layer]
    edges: tuple[Edge, ...]
    constants: dict[int, np.ndarray]

    def producers(self, layer_id: int) -> list[Layer]:
        """The layers feeding ``layer_id``'s inputs, in input-port order."""
        feeding = sorted((e.to_port, e.from_layer) for e in self.edges if e.to_layer == layer_id)
        return [self.layers[source] for _, source in feeding]

    def constant(self, layer_id: int) -> np.ndarray | None:
        """The value of a ``Const`` layer, or of a ``Convert`` of one (how the IR stores compressed FP16 weights)
        in the converted type; None for any other layer."""
        layer = self.layers[layer_id]
        if layer.type == "Const":
            return self.constants[layer_id]
        if layer.type == "Convert":
            (source,) = self.producers(layer_id)
            value = self.constant(source.id)
            target = ELEMENT_TYPES.get(layer.data.get("destination_type", ""))
            if value is not None and target is not None:
                return value.astype(target)
        return None

    def topological_order(self) -> list[Layer]:
        """Every layer after the layers it reads from; among ready layers the lowest id comes first, so the order
        is stable and follows the file's own order when that is already topological."""
        waiting = {i: 0 for i in self.layers}
        readers: dict[int, list[int]] = {i: [] for i in self.layers}
        for edge in self.edges:
            waiting[edge.to_layer] += 1
            readers[edge.from_layer].append(edge.to_layer)
        ready = [i for i, n in waiting.items() if n == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            current = heapq.heappop(ready)
            order.append(self.layers[current])
            for reader in readers[current]:
                waiting[reader] -= 1
                if waiting[reader] == 0:
                    heapq.heappush(ready, reader)
        if len(order) != len(self.layers):
            raise ModelFileError(self.source, "the graph has a cycle")
        return order


def _int(element: ET.Element, attribute: str, source: str, where: str) -> int:
    value = element.get(attribute)
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ModelFileError(source, f"{where}: attribute {attribute!r} is {value!r}, expected an integer") from None


def _shape(text: str, source: str, where: str) -> tuple[int, ...]:
    """``"1, 3, 1, 1"`` (a Const's shape attribute); an empty string is a scalar."""
    try:
        return tuple(int(d) for d in text.replace(" ", "").split(",") if d)
    except ValueError:
        raise ModelFileError(source, f"{where}: bad shape {text!r}") from None


def _ports(layer: ET.Element, kind: str, source: str, where: str) -> tuple[Port, ...]:
    ports = []
    for port in layer.findall(f"{kind}/port"):
        dims = []
        for dim in port.findall("dim"):
            text = (dim.text or "").strip()
            try:
                dims.append(-1 if text == "?" else int(text))
            except ValueError:
                raise ModelFileError(source, f"{where}: bad dimension {text!r}") from None
        ports.append(Port(_int(port, "id", source, where), tuple(dims), port.get("precision", "")))
    return tuple(ports)


def _layer(element: ET.Element, source: str) -> Layer:
    where = f"layer {element.get('id')!r} ({element.get('name', '?')})"
    kind = element.get("type")
    if not kind:
        raise ModelFileError(source, f"{where}: no type")
    data = element.find("data")
    return Layer(_int(element, "id", source, where), element.get("name", ""), kind, element.get("version", ""),
                 dict(data.attrib) if data is not None else {}, _ports(element, "input", source, where),
                 _ports(element, "output", source, where))


def _constant(layer: Layer, weights: bytes, bin_source: str) -> np.ndarray:
    """Cut one ``Const`` layer's value out of the ``.bin`` bytes, checking type, bounds and size."""
    where = f"Const layer {layer.id} ({layer.name})"
    try:
        element_type, offset, size = layer.data["element_type"], int(layer.data["offset"]), int(layer.data["size"])
        shape = _shape(layer.data["shape"], bin_source, where)
    except KeyError as missing:
        raise ModelFileError(bin_source, f"{where}: no {missing.args[0]!r} attribute") from None
    except ValueError:
        raise ModelFileError(bin_source, f"{where}: offset and size must be integers") from None
    if element_type not in ELEMENT_TYPES:
        raise ModelFileError(bin_source, f"{where}: element type {element_type!r} is not supported")
    dtype = np.dtype(ELEMENT_TYPES[element_type])
    if offset < 0 or size < 0 or offset + size > len(weights):
        raise ModelFileError(bin_source, f"{where}: bytes {offset}..{offset + size} lie outside the "
                                         f"{len(weights)}-byte file")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size != expected:
        raise ModelFileError(bin_source, f"{where}: {size} bytes, but shape {shape} of {element_type} needs "
                                         f"{expected}")
    return np.frombuffer(weights, dtype, count=expected // dtype.itemsize, offset=offset).reshape(shape).copy()


def _edges(root: ET.Element, layers: dict[int, Layer], source: str) -> tuple[Edge, ...]:
    edges, fed = [], set()
    for element in root.findall("edges/edge"):
        edge = Edge(*(_int(element, a, source, "edge") for a in ("from-layer", "from-port", "to-layer", "to-port")))
        for layer_id, port_id, kind in ((edge.from_layer, edge.from_port, "outputs"),
                                        (edge.to_layer, edge.to_port, "inputs")):
            if layer_id not in layers or port_id not in {p.id for p in getattr(layers[layer_id], kind)}:
                raise ModelFileError(source, f"edge {edge} names a missing layer or port ({layer_id}:{port_id})")
        if (edge.to_layer, edge.to_port) in fed:
            raise ModelFileError(source, f"input port {edge.to_port} of layer {edge.to_layer} is fed twice")
        fed.add((edge.to_layer, edge.to_port))
        edges.append(edge)
    for layer in layers.values():
        for port in layer.inputs:
            if (layer.id, port.id) not in fed:
                raise ModelFileError(source, f"input port {port.id} of layer {layer.id} ({layer.name}) has no edge")
    return tuple(edges)


def read_ir(xml_path: str | Path, bin_path: str | Path | None = None) -> IRGraph:
    """Parse an IR ``.xml`` and its ``.bin`` (default: the same name with ``.bin``) into an :class:`IRGraph`."""
    xml_path = Path(xml_path)
    bin_path = Path(bin_path) if bin_path is not None else xml_path.with_suffix(".bin")
    source = str(xml_path)
    try:
        root = ET.fromstring(xml_path.read_bytes())
    except OSError as exc:
        raise ModelFileError(source, f"cannot read: {exc.strerror or exc}") from None
    except ET.ParseError as exc:
        raise ModelFileError(source, f"not well-formed XML: {exc}") from None
    if root.tag != "net":
        raise ModelFileError(source, f"not an OpenVINO IR: the root element is <{root.tag}>, expected <net>")
    version = _int(root, "version", source, "<net>")
    if version not in SUPPORTED_VERSIONS:
        raise ModelFileError(source, f"IR version {version} is not supported (only {SUPPORTED_VERSIONS})")
    layers: dict[int, Layer] = {}
    for element in root.findall("layers/layer"):
        layer = _layer(element, source)
        if layer.id in layers:
            raise ModelFileError(source, f"layer id {layer.id} appears twice")
        layers[layer.id] = layer
    if not layers:
        raise ModelFileError(source, "no <layers>: not an OpenVINO IR graph")
    edges = _edges(root, layers, source)
    const_layers = [layer for layer in layers.values() if layer.type == "Const"]
    weights = b""
    if const_layers:
        try:
            weights = bin_path.read_bytes()
        except OSError as exc:
            raise ModelFileError(str(bin_path), f"cannot read the IR's weights: {exc.strerror or exc}") from None
    constants = {layer.id: _constant(layer, weights, str(bin_path)) for layer in const_layers}
    return IRGraph(source, root.get("name", ""), version, layers, edges, constants)
