"""The OpenVINO IR reader: the vendored IR read completely, a small hand-written IR, malformed files refused."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest

from maskface.errors import ModelFileError
from maskface.io.locations import shipped_weights
from maskface.models.openvino_ir import read_ir

IR_XML = shipped_weights("omz_face_reid_0095/face-reidentification-retail-0095.xml")


def test_reader_parses_the_vendored_ir_completely():
    graph = read_ir(IR_XML)
    assert (graph.version, len(graph.layers), len(graph.edges), len(graph.constants)) == (11, 686, 712, 209)
    stem = graph.constants[7]  # Gather_9106_compressed: the first convolution's weights
    assert graph.layers[7].name == "Gather_9106_compressed" and stem.dtype == np.float16 and stem.shape == (64, 3, 3, 3)
    assert graph.constant(8).dtype == np.float32 and np.array_equal(graph.constant(8), stem.astype(np.float32))
    # every byte of the .bin belongs to exactly one constant
    spans = sorted((int(layer.data["offset"]), int(layer.data["size"])) for layer in graph.layers.values()
                   if layer.type == "Const")
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(spans))
    assert spans[0][0] == 0 and sum(n for _, n in spans) == IR_XML.with_suffix(".bin").stat().st_size
    order = [layer.id for layer in graph.topological_order()]
    position = {layer_id: i for i, layer_id in enumerate(order)}
    assert all(position[e.from_layer] < position[e.to_layer] for e in graph.edges)
    assert graph.layers[order[-1]].type == "Result" and graph.layers[order[-1]].inputs[0].shape == (1, 256, 1, 1)


TINY_IR = """<?xml version="1.0"?>
<net name="tiny" version="{version}">
  <layers>
    <layer id="0" name="w" type="Const" version="opset1">
      <data element_type="{element_type}" shape="1, 2" offset="0" size="{size}"/>
      <output><port id="0" precision="FP16"><dim>1</dim><dim>2</dim></port></output>
    </layer>
    <layer id="1" name="w32" type="Convert" version="opset1">
      <data destination_type="f32"/>
      <input><port id="0"><dim>1</dim><dim>2</dim></port></input>
      <output><port id="1"><dim>1</dim><dim>2</dim></port></output>
    </layer>
    <layer id="2" name="y" type="Add" version="opset1">
      <input><port id="0"/><port id="1"/></input>
      <output><port id="2"/></output>
    </layer>
    <layer id="3" name="x" type="Parameter" version="opset1">
      <data shape="1,2" element_type="f32"/>
      <output><port id="0" precision="FP32"><dim>1</dim><dim>?</dim></port></output>
    </layer>
    <layer id="4" name="out" type="Result" version="opset1"><input><port id="0"/></input></layer>
  </layers>
  <edges>
    <edge from-layer="3" from-port="0" to-layer="2" to-port="0"/>
    <edge from-layer="0" from-port="0" to-layer="1" to-port="0"/>
    <edge from-layer="1" from-port="1" to-layer="2" to-port="{add_port}"/>
    <edge from-layer="2" from-port="2" to-layer="4" to-port="0"/>
  </edges>
</net>
"""


def write_tiny_ir(folder: Path, weights: bytes = np.array([1.5, -2.0], "<f2").tobytes(), **fields) -> Path:
    values = {"version": 11, "element_type": "f16", "size": 4, "add_port": 1} | fields
    xml = folder / "tiny.xml"
    xml.write_text(TINY_IR.format(**values))
    xml.with_suffix(".bin").write_bytes(weights)
    return xml


def test_reader_on_a_small_hand_written_ir(tmp_path):
    graph = read_ir(write_tiny_ir(tmp_path))
    assert graph.name == "tiny" and graph.layers[3].outputs[0].shape == (1, -1)
    assert [layer.id for layer in graph.topological_order()] == [0, 1, 3, 2, 4]  # the Parameter before the Add
    assert [layer.name for layer in graph.producers(2)] == ["x", "w32"]
    assert graph.constant(1).tolist() == [[1.5, -2.0]] and graph.constant(1).dtype == np.float32
    assert graph.constant(2) is None


@pytest.mark.parametrize(("fields", "message"), [
    ({"version": 7}, "IR version 7 is not supported"),
    ({"size": 2}, "2 bytes, but shape (1, 2) of f16 needs 4"),
    ({"element_type": "bf16"}, "element type 'bf16' is not supported"),
    ({"add_port": 5}, "names a missing layer or port (2:5)"),
])
def test_reader_rejects_inconsistent_graphs(tmp_path, fields, message):
    with pytest.raises(ModelFileError, match=re.escape(message)):
        read_ir(write_tiny_ir(tmp_path, **fields))


@pytest.mark.parametrize(("xml", "message"), [
    (b"\x00 not xml", "not well-formed XML"),
    (b"<model version='11'/>", "not an OpenVINO IR: the root element is <model>"),
    (b"<net version='11'><layers/></net>", "no <layers>"),
])
def test_reader_rejects_files_that_are_not_an_ir(tmp_path, xml, message):
    path = write_tiny_ir(tmp_path)
    path.write_bytes(xml)
    with pytest.raises(ModelFileError, match=re.escape(message)):
        read_ir(path)


def test_reader_rejects_short_or_missing_weights(tmp_path):
    with pytest.raises(ModelFileError, match=re.escape("bytes 0..4 lie outside the 2-byte file")):
        read_ir(write_tiny_ir(tmp_path, weights=b"\x00\x3c"))
    write_tiny_ir(tmp_path).with_suffix(".bin").unlink()
    with pytest.raises(ModelFileError, match="tiny.bin: cannot read the IR's weights"):
        read_ir(tmp_path / "tiny.xml")


def test_reader_names_a_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="cannot read"):
        read_ir(tmp_path / "absent.xml")
