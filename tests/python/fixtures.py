"""Shared by the Python tests: the fixture models, safetensors files read and written with numpy
(BF16 as uint16 bits), BF16 conversions, and modified copies of a fixture checkpoint."""

import json
import os
import shutil
import struct
import tempfile

import numpy as np

DATA = os.environ.get(
    "FP8LLM_TEST_DATA", os.path.join(os.path.dirname(__file__), "..", "data")
)
TINY_LLAMA = os.path.join(DATA, "tiny-llama")
# No registry of pre-quantized copies: every test quantizes on the fly, whatever the machine has.
NO_REGISTRY = os.path.join(DATA, "no-registry.json")
PROMPT = [0, 384, 950, 902, 17, 33, 640, 5]

_NUMPY = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F8_E4M3": np.uint8}
_NAMES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.uint16): "BF16"}


def read_safetensors(path):
    """name -> (dtype name, numpy array: BF16 as uint16 bits, F8_E4M3 as uint8 codes)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype=_NUMPY[info["dtype"]])
        out[name] = (info["dtype"], array.reshape(info["shape"]).copy())
    return out


def write_safetensors(path, tensors):
    """tensors: name -> numpy array (uint16 arrays are written as BF16)."""
    header, blobs, at = {"__metadata__": {"format": "pt"}}, [], 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {
            "dtype": _NAMES[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [at, at + len(raw)],
        }
        blobs.append(raw)
        at += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(values):
    """Round to nearest even, as the engine does (finite values)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounding = ((bits >> 16) & 1) + 0x7FFF
    return ((bits + rounding) >> 16).astype(np.uint16)


def modified_weights(model_dir=TINY_LLAMA):
    """The checkpoint's tensors changed enough to change every logit: each value scaled and
    shifted by amounts that depend on the tensor and the element, as BF16 bits."""
    out = {}
    for salt, (name, (dtype, array)) in enumerate(
        sorted(read_safetensors(os.path.join(model_dir, "model.safetensors")).items())
    ):
        assert dtype == "BF16", name
        v = bf16_to_f32(array).astype(np.float32)
        i = np.arange(v.size, dtype=np.int64).reshape(v.shape)
        v = v * (1.0 + 0.03125 * ((i + salt) % 7)) + 0.001 * (((i * 13 + salt) % 5) - 2)
        out[name] = f32_to_bf16(v.astype(np.float32))
    return out


class ModelCopy:
    """A temporary copy of a fixture model directory with its weights replaced."""

    def __init__(self, tensors, model_dir=TINY_LLAMA):
        self._dir = tempfile.TemporaryDirectory(prefix="fp8llm-test-")
        self.path = self._dir.name
        for f in os.listdir(model_dir):
            if f.endswith(".json"):
                shutil.copy(os.path.join(model_dir, f), self.path)
        write_safetensors(os.path.join(self.path, "model.safetensors"), tensors)

    def close(self):
        self._dir.cleanup()


def log_softmax(row):
    row = row.astype(np.float64)
    m = row.max()
    return row - m - np.log(np.exp(row - m).sum())
