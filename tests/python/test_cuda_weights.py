"""Live weights on the CUDA engine (skipped without a CUDA device): views of device memory;
writing back the dequantized state dict changes no bit; a modified checkpoint gives the stored
bytes and logits of a fresh CUDA load (from numpy, and from torch CUDA tensors when torch is
installed); sleep(2) is refused while views are alive, and wake_up restores the logits exactly."""

import gc
import unittest

import numpy as np

import fp8llm
from fixtures import (NO_REGISTRY, PROMPT, TINY_LLAMA, ModelCopy, bf16_to_f32,
                      modified_weights)

MODES = ["fp8-row", "fp8-block", "none"]


def load(mode, model=TINY_LLAMA):
    # fp32 sums, so that two engines holding the same bytes give the same logits.
    return fp8llm.LLM(model, quantization=mode, device="cuda", max_context=128, kv_memory=0.25,
                      fp8_gemm="fp32", registry=NO_REGISTRY)


def stored_bytes(llm):
    """The stored state dict copied to the host (the views are in device memory)."""
    return {t.name: t.numpy().tobytes() for t in llm._engine.state_dict_copies("stored")}


@unittest.skipUnless(fp8llm.cuda_available(), "no CUDA device")
class CudaWeights(unittest.TestCase):
    def test_views_are_device_memory(self):
        llm = load("fp8-block")
        views = llm.state_dict("stored")
        t = views["model.layers.0.self_attn.q_proj.weight_scale_inv"]
        self.assertEqual((t.device, t.__dlpack_device__()), ("cuda", (2, 0)))
        self.assertEqual(t.shape, (2, 2))
        self.assertEqual(t.strides, (4, 1))  # the device pads block-scale rows to 4
        with self.assertRaises(fp8llm.Error):
            t.numpy()
        with self.assertRaises(fp8llm.Error) as e:
            llm.sleep(2)
        self.assertIn("views of the stored state dict are alive", str(e.exception))
        before = llm.logits(PROMPT)
        del views, t
        gc.collect()
        llm.sleep(2)
        llm.wake_up()
        self.assertTrue(np.array_equal(llm.logits(PROMPT), before))

    def test_round_trip_and_modified_checkpoint(self):
        changed = modified_weights()
        copy = ModelCopy(changed)
        self.addCleanup(copy.close)
        for mode in MODES:
            with self.subTest(mode=mode):
                llm = load(mode)
                before = llm.logits(PROMPT)
                stored = stored_bytes(llm)
                llm.update_weights(llm.state_dict("dequantized"))
                self.assertEqual(stored_bytes(llm), stored)
                self.assertTrue(np.array_equal(llm.logits(PROMPT), before))
                fresh = load(mode, copy.path)
                llm.update_weights({n: bf16_to_f32(b) for n, b in changed.items()})
                self.assertEqual(stored_bytes(llm), stored_bytes(fresh))
                self.assertTrue(np.array_equal(llm.logits(PROMPT), fresh.logits(PROMPT)))

    def test_torch_cuda_tensors(self):
        try:
            import torch
        except ImportError:
            self.skipTest("torch is not installed")
        changed = modified_weights()
        copy = ModelCopy(changed)
        self.addCleanup(copy.close)
        for mode in ("fp8-row", "fp8-block"):
            with self.subTest(mode=mode):
                fresh = load(mode, copy.path)
                llm = load(mode)
                tensors = {n: torch.from_numpy(bf16_to_f32(b)).to("cuda", torch.bfloat16)
                           for n, b in changed.items()}
                tensors = {n: t.requires_grad_() for n, t in tensors.items()}  # detached for us
                llm.update_weights(tensors)
                self.assertEqual(stored_bytes(llm), stored_bytes(fresh))
                self.assertTrue(np.array_equal(llm.logits(PROMPT), fresh.logits(PROMPT)))
                view = torch.from_dlpack(llm.state_dict("stored")["model.norm.weight"])
                self.assertEqual((view.device.type, view.dtype), ("cuda", torch.bfloat16))


if __name__ == "__main__":
    unittest.main()
