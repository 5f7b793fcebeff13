"""Live weights on the CPU engine, in every mode: state_dict views share the engine's memory;
writing back the dequantized state dict changes no bit; a modified checkpoint's tensors (numpy
F32, BF16 bits, DLPack producers, fused qkv_proj / gate_up_proj) give exactly the logits of a
fresh load of that checkpoint; bad tensors fail naming themselves and change nothing."""

import os
import unittest

import numpy as np

import fp8llm
from fixtures import (NO_REGISTRY, PROMPT, TINY_LLAMA, ModelCopy, bf16_to_f32,
                      modified_weights, read_safetensors)

MODES = ["fp8-row", "fp8-block", "none"]


def load(mode, model=TINY_LLAMA):
    return fp8llm.LLM(model, quantization=mode, device="cpu", max_context=128,
                      registry=NO_REGISTRY)


class DLPackOnly:
    """A producer that offers nothing but DLPack (as torch tensors do)."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, stream=None):
        return self._array.__dlpack__()

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


def stored_bytes(llm):
    return {name: t.numpy().tobytes() for name, t in llm.state_dict("stored").items()}


class StateDict(unittest.TestCase):
    def test_stored_views_are_the_reference_fp8_checkpoint_without_a_copy(self):
        llm = load("fp8-block")
        want = read_safetensors(os.path.join(TINY_LLAMA, "expected_fp8_block.safetensors"))
        views = llm.state_dict("stored")
        self.assertEqual(sorted(views), sorted(want))
        for name, t in views.items():
            dtype, array = want[name]
            self.assertEqual(t.dtype, dtype, name)
            self.assertEqual(t.shape, array.shape, name)
            self.assertEqual(t.device, "cpu")
            self.assertEqual(t.__dlpack_device__(), (1, 0))
            a = t.numpy()
            self.assertTrue(np.array_equal(a.view(np.uint8), array.view(np.uint8)), name)
            self.assertEqual(a.__array_interface__["data"][0], t.data_ptr, name)
            if dtype == "F32":  # numpy reads float32 through DLPack too
                d = np.from_dlpack(t)
                self.assertEqual(d.__array_interface__["data"][0], t.data_ptr)
                self.assertTrue(np.array_equal(d, array))
        # Listing again gives views of the same memory.
        again = llm.state_dict("stored")
        for name, t in views.items():
            self.assertEqual(again[name].data_ptr, t.data_ptr)

    def test_dequantized_copies(self):
        llm = load("fp8-row")
        deq = llm.state_dict("dequantized")
        self.assertNotIn("model.layers.0.self_attn.q_proj.weight_scale", deq)
        q = deq["model.layers.0.self_attn.q_proj.weight"]
        self.assertEqual((q.dtype, q.shape), ("BF16", (256, 256)))
        stored = llm.state_dict("stored")
        codes = stored["model.layers.0.self_attn.q_proj.weight"].numpy()
        scales = stored["model.layers.0.self_attn.q_proj.weight_scale"].numpy()
        self.assertEqual(scales.shape, (256, 1))
        self.assertNotEqual(q.data_ptr, stored["model.layers.0.self_attn.q_proj.weight"].data_ptr)
        # Two codes that dequantize to the largest magnitude of their row: 448 * scale.
        row = bf16_to_f32(q.numpy()[3])
        self.assertAlmostEqual(float(np.abs(row).max()), 448 * float(scales[3, 0]),
                               delta=float(scales[3, 0]) * 2)
        self.assertEqual(codes.dtype, np.uint8)


class Update(unittest.TestCase):
    def test_dequantized_state_dict_written_back_changes_no_bit(self):
        for mode in MODES:
            with self.subTest(mode=mode):
                llm = load(mode)
                before = llm.logits(PROMPT)
                stored = stored_bytes(llm)
                report = llm.update_weights(llm.state_dict("dequantized"))
                self.assertEqual(report["tensors"], 21)
                self.assertEqual(report["quantized"], 0 if mode == "none" else 14)
                self.assertTrue(np.array_equal(llm.logits(PROMPT), before))
                self.assertEqual(stored_bytes(llm), stored)

    def test_modified_checkpoint_gives_the_logits_of_a_fresh_load(self):
        changed = modified_weights()
        copy = ModelCopy(changed)
        self.addCleanup(copy.close)
        l0, l1 = "model.layers.0.self_attn.", "model.layers.1.mlp."
        for mode in MODES:
            with self.subTest(mode=mode):
                fresh = load(mode, copy.path)
                want = fresh.logits(PROMPT)
                llm = load(mode)
                views = llm.state_dict("stored")
                self.assertFalse(np.array_equal(llm.logits(PROMPT), want))
                named = [
                    (l0 + "qkv_proj.weight", np.concatenate([bf16_to_f32(changed[l0 + p])
                                                            for p in ("q_proj.weight",
                                                                      "k_proj.weight",
                                                                      "v_proj.weight")])),
                    (l1 + "gate_up_proj.weight", fp8llm.Tensor.bf16(np.concatenate(
                        [changed[l1 + "gate_proj.weight"], changed[l1 + "up_proj.weight"]]))),
                ]
                fused = {l0 + "q_proj.weight", l0 + "k_proj.weight", l0 + "v_proj.weight",
                         l1 + "gate_proj.weight", l1 + "up_proj.weight"}
                for i, (name, bits) in enumerate(sorted(changed.items())):
                    if name in fused:
                        continue
                    if i % 3 == 0:
                        named.append((name, bf16_to_f32(bits)))  # numpy float32
                    elif i % 3 == 1:
                        named.append((name, fp8llm.Tensor.bf16(bits)))  # BF16 bits
                    else:
                        named.append((name, DLPackOnly(bf16_to_f32(bits))))  # DLPack import
                report = llm.update_weights(named)
                self.assertEqual(report["tensors"], 21)
                self.assertTrue(np.array_equal(llm.logits(PROMPT), want))
                self.assertEqual(stored_bytes(llm), stored_bytes(fresh))
                # The views taken before the update show the new weights: same memory.
                for name, t in llm.state_dict("stored").items():
                    self.assertEqual(t.data_ptr, views[name].data_ptr)
                    self.assertEqual(views[name].numpy().tobytes(), t.numpy().tobytes())

    def test_partial_update_and_non_contiguous_arrays(self):
        llm = load("fp8-block")
        name = "model.layers.1.self_attn.o_proj.weight"
        before = stored_bytes(llm)
        values = bf16_to_f32(modified_weights()[name])
        llm.update_weights([(name, np.asfortranarray(values))])  # copied to row-major first
        after = stored_bytes(llm)
        for n in before:
            self.assertEqual(before[n] != after[n], n.startswith(name), n)
        other = load("fp8-block")
        other.update_weights({name: np.ascontiguousarray(values)})
        self.assertEqual(stored_bytes(other), after)

    def test_bad_tensors_fail_naming_themselves_and_change_nothing(self):
        llm = load("fp8-row")
        before = llm.logits(PROMPT)
        stored = stored_bytes(llm)
        good = [(n, bf16_to_f32(b)) for n, b in sorted(modified_weights().items())]
        q = "model.layers.0.self_attn.q_proj.weight"
        qv = dict(good)[q]
        nan = dict(good)["model.layers.1.mlp.down_proj.weight"].copy()
        nan[3, 7] = np.nan
        inf = fp8llm.Tensor.bf16(np.full((256, 256), 0x7F80, dtype=np.uint16))
        bad = [
            ("model.layers.7.self_attn.q_proj.weight", qv, "is not a weight of this model"),
            (q, qv[:, :128], "shape [256, 128] where the model has [256, 256]"),
            (q, qv.astype(np.float64), "numpy dtype float64 cannot be written"),
            (q, qv.astype(np.int32), "numpy dtype int32 cannot be written"),
            (q, llm.state_dict("stored")[q], "dtype 'F8_E4M3' cannot be written"),
            (q + "_scale", np.ones((256, 1), np.float32), "scales are not written"),
            ("model.layers.1.mlp.down_proj.weight", nan, "element 1927 is nan"),
            ("model.layers.0.self_attn.o_proj.weight", inf, "element 0 is inf"),
            ("model.layers.0.self_attn.qkv_proj.weight", qv, "(its parts stacked by rows)"),
            (q, "not a tensor", "is neither a numpy array nor a DLPack tensor"),
        ]
        for name, tensor, message in bad:
            with self.subTest(message=message):
                others = [(n, t) for n, t in good if n != name]
                for at in (len(others), len(others) // 2):
                    call = others[:at] + [(name, tensor)] + others[at:]
                    with self.assertRaises(fp8llm.Error) as e:
                        llm.update_weights(call)
                    self.assertIn(message, str(e.exception))
                    self.assertIn(name, str(e.exception))
                    self.assertTrue(np.array_equal(llm.logits(PROMPT), before))
        with self.assertRaises(fp8llm.Error) as e:
            llm.update_weights(good + [good[0]])
        self.assertIn("is given twice", str(e.exception))
        self.assertEqual(stored_bytes(llm), stored)
        self.assertTrue(np.array_equal(llm.logits(PROMPT), before))

    def test_update_clears_the_prefix_cache(self):
        llm = load("fp8-block")
        prompt = [int(7 + (11 * i) % 900) for i in range(40)]
        greedy = fp8llm.SamplingParams(temperature=0, max_tokens=4, ignore_eos=True)
        llm.generate(prompt, greedy, use_tqdm=False)
        self.assertEqual(llm.generate(prompt, greedy, use_tqdm=False)[0].num_cached_tokens, 32)
        changed = modified_weights()
        llm.update_weights({n: fp8llm.Tensor.bf16(b) for n, b in changed.items()})
        out = llm.generate(prompt, greedy, use_tqdm=False)[0]
        self.assertEqual(out.num_cached_tokens, 0)
        copy = ModelCopy(changed)
        self.addCleanup(copy.close)
        fresh = load("fp8-block", copy.path)
        self.assertEqual(out.outputs[0].token_ids,
                         fresh.generate(prompt, greedy, use_tqdm=False)[0].outputs[0].token_ids)


class Sleep(unittest.TestCase):
    def test_wake_up_gives_identical_logits(self):
        for level in (1, 2):
            with self.subTest(level=level):
                llm = load("fp8-block")
                views = llm.state_dict("stored")  # host weights stay put: views stay valid
                before = llm.logits(PROMPT)
                params = fp8llm.SamplingParams(n=2, seed=3, max_tokens=8, ignore_eos=True)
                tokens = [c.token_ids for c in llm.generate(PROMPT, params, use_tqdm=False)[0].outputs]
                llm.sleep(level)
                self.assertEqual(llm.sleep_level, level)
                with self.assertRaises(fp8llm.Error) as e:
                    llm.generate(PROMPT, use_tqdm=False)
                self.assertIn("asleep", str(e.exception))
                with self.assertRaises(fp8llm.Error):
                    llm.sleep(1)
                llm.wake_up()
                self.assertEqual(llm.sleep_level, 0)
                self.assertEqual(llm.stats()["kv_blocks_used"], 0)
                self.assertTrue(np.array_equal(llm.logits(PROMPT), before))
                again = llm.generate(PROMPT, params, use_tqdm=False)[0].outputs
                self.assertEqual([c.token_ids for c in again], tokens)
                self.assertEqual(len(views), len(llm.state_dict("stored")))

    def test_update_while_asleep_at_level_1_but_not_2(self):
        llm = load("fp8-row")
        deq = llm.state_dict("dequantized")
        before = llm.logits(PROMPT)
        llm.sleep(2)
        with self.assertRaises(fp8llm.Error) as e:
            llm.update_weights(deq)
        self.assertIn("asleep at level 2", str(e.exception))
        llm.wake_up()
        llm.sleep(1)
        llm.update_weights(deq)
        llm.wake_up()
        self.assertTrue(np.array_equal(llm.logits(PROMPT), before))


if __name__ == "__main__":
    unittest.main()
