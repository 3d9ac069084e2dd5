"""Preprocessing derives everything from the model's own input details."""

import numpy as np
import pytest

from edgebench.agent.preprocess.image import Normalization, Preprocessor, default_normalization
from edgebench.agent.runtime.interpreter import TensorInfo


def tensor(dtype, scale=0.0, zp=0, shape=(1, 4, 4, 3)):
    return TensorInfo(name="input", index=0, shape=list(shape), dtype=dtype, scale=scale, zero_point=zp)


def gradient_frame(h=4, w=4):
    """A BGR frame whose channels differ, so colour order mistakes show."""
    f = np.zeros((h, w, 3), np.uint8)
    f[..., 0] = 10  # B
    f[..., 1] = 100  # G
    f[..., 2] = 250  # R
    return f


def test_uint8_mobilenet_quantization_feeds_raw_rgb_pixels():
    # mobilenet_v2_1.0_224_quant: uint8, scale 1/128, zero point 128 -> raw pixels
    pre = Preprocessor(tensor("uint8", 0.0078125, 128))
    out = pre(gradient_frame())
    assert out.dtype == np.uint8 and out.shape == (1, 4, 4, 3)
    assert out[0, 0, 0].tolist() == [250, 100, 10]  # RGB, not BGR
    assert pre.norm.source == "default"


def test_int8_input_is_pixels_minus_128_for_unit_range_models():
    # the usual full-int8 export of a [0, 1] model: scale 1/255, zero point -128
    pre = Preprocessor(tensor("int8", 1 / 255, -128))
    out = pre(gradient_frame())
    assert out.dtype == np.int8
    assert out[0, 0, 0].tolist() == [250 - 128, 100 - 128, 10 - 128]


def test_explicit_normalization_maps_through_quantization_exactly():
    inp = tensor("int8", 0.02, 3)
    norm = Normalization([127.5] * 3, [127.5] * 3, "config")
    out = Preprocessor(inp, normalization=norm)(gradient_frame())
    for got, p in zip(out[0, 0, 0].tolist(), [250, 100, 10]):
        want = int(np.clip(np.round(((p - 127.5) / 127.5) / 0.02) + 3, -128, 127))
        assert got == want


def test_float_input_default_is_minus_one_to_one():
    out = Preprocessor(tensor("float32"))(gradient_frame())
    assert out.dtype == np.float32
    np.testing.assert_allclose(
        out[0, 0, 0], [(250 - 127.5) / 127.5, (100 - 127.5) / 127.5, (10 - 127.5) / 127.5], rtol=1e-6
    )


def test_bgr_override_keeps_channel_order():
    out = Preprocessor(tensor("uint8", 0.0078125, 128), color="BGR")(gradient_frame())
    assert out[0, 0, 0].tolist() == [10, 100, 250]


@pytest.mark.parametrize("mode", ["stretch", "crop", "letterbox"])
def test_resize_modes_produce_the_input_size(mode):
    pre = Preprocessor(tensor("uint8", 0.0078125, 128, shape=(1, 32, 48, 3)), resize=mode)
    frame = np.full((120, 60, 3), 200, np.uint8)
    out = pre(frame)
    assert out.shape == (1, 32, 48, 3)
    if mode == "letterbox":  # a tall frame in a wide input: bars left and right
        assert out[0, :, 0].max() == 0 and out[0, 16, 24, 0] == 200
    else:
        assert out.min() == 200


def test_default_normalization_reproduces_the_quantized_range():
    n = default_normalization(tensor("int8", 0.5, 10))
    # q = round((p - mean)/std/scale) + zp must equal p - 128
    p = np.arange(256)
    q = np.round((p - n.mean[0]) / n.std[0] / 0.5) + 10
    assert np.array_equal(q, p - 128)


@pytest.mark.parametrize(
    "dtype, scale, zp, norm",
    [
        ("int8", 1 / 255, -128, None),  # q = p - 128: the sign-bit flip
        ("int8", 0.02, 3, Normalization([127.5] * 3, [127.5] * 3, "config")),  # a shared table
        ("uint8", 0.01, 7, Normalization([100.0, 120.0, 140.0], [50.0, 60.0, 70.0], "config")),  # per channel
        ("float32", 0.0, 0, Normalization([0.0, 10.0, 20.0], [255.0, 128.0, 64.0], "config")),
    ],
)
def test_every_fast_path_equals_the_lookup_table(dtype, scale, zp, norm):
    """Whatever shortcut the preprocessor takes, it gives exactly the table's values."""
    pre = Preprocessor(tensor(dtype, scale, zp, shape=(1, 16, 16, 3)), normalization=norm)
    frame = np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    out = pre(frame)
    rgb = frame[..., ::-1]
    want = np.stack([pre._lut[c][rgb[..., c]] for c in range(3)], axis=-1)
    assert out.dtype == want.dtype and np.array_equal(out[0], want)
