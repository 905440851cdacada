"""dlib's serialisation primitives and the parse of the real ResNet file."""

from __future__ import annotations

import math

import numpy as np
import pytest

from maskface.errors import ModelFileError
from maskface.io.locations import RESNET, dlib_model_path
from maskface.models.dlib_format import DlibReader, pack_float, pack_int, pack_tensor
from maskface.models.dlib_resnet import load_dlib_resnet, read_dlib_resnet_params


@pytest.mark.parametrize("value,encoded", [(0, b"\x01\x00"), (1, b"\x01\x01"), (255, b"\x01\xff"),
                                           (256, b"\x02\x00\x01"), (-2, b"\x81\x02"),
                                           (2**40, b"\x06" + (2**40).to_bytes(6, "little"))])
def test_integers_match_dlib_encoding(value, encoded):
    assert pack_int(value) == encoded
    assert DlibReader(encoded).read_int() == value


@pytest.mark.parametrize("value", [0.0, 1.0, -0.1, 122.782, 3.0e-7, 1e20])
def test_floats_round_trip(value):
    as_float32 = float(np.float32(value))
    assert DlibReader(pack_float(as_float32)).read_float() == as_float32


def test_float_specials_and_strings_and_bools():
    inf = pack_int(1) + pack_int(32000)
    nan = pack_int(1) + pack_int(32002)
    reader = DlibReader(inf + nan + pack_int(4) + b"con_" + b"1" + b"0")
    assert reader.read_float() == math.inf
    assert math.isnan(reader.read_float())
    assert reader.read_string() == "con_"
    assert reader.read_bool() is True and reader.read_bool() is False
    assert reader.at_end


def test_tensor_round_trip():
    array = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4) / 7
    np.testing.assert_array_equal(DlibReader(pack_tensor(array)).read_tensor(), array)


@pytest.mark.parametrize("data,message,offset", [(b"\x00", "bad integer control byte", 0),
                                                 (b"\x03\x01", "file ends early", 1), (b"2", "bad bool byte", 0)])
def test_bad_bytes_name_file_and_offset(data, message, offset):
    reader = DlibReader(data, "x.dat")
    with pytest.raises(ModelFileError, match=message) as info:
        reader.read_bool() if data == b"2" else reader.read_int()
    assert "x.dat" in str(info.value) and f"at byte {offset} of {len(data)}" in str(info.value)


def test_real_resnet_parses_to_its_last_byte():
    params = read_dlib_resnet_params(dlib_model_path(RESNET))
    assert sum(v.size for v in params.values()) == 5_614_592  # 5.61 M parameters
    assert params["stem_conv.weight"].shape == (32, 3, 7, 7)
    assert params["fc.weight"].shape == (128, 256)


def test_damaged_file_fails_with_a_clear_message(tmp_path):
    data = bytearray(dlib_model_path(RESNET).read_bytes())
    data[1] = ord("X")  # the loss layer's record name
    broken = tmp_path / "broken.dat"
    broken.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="expected record|bad integer|unexpected"):
        load_dlib_resnet(broken)
    truncated = tmp_path / "short.dat"
    truncated.write_bytes(dlib_model_path(RESNET).read_bytes()[:-10])
    with pytest.raises(ModelFileError, match="file ends early|bad"):
        load_dlib_resnet(truncated)
    with pytest.raises(ModelFileError, match="file not found"):
        load_dlib_resnet(tmp_path / "missing.dat")
