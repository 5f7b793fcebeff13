"""LoRA adapters and tensor parallelism through LLM on the CPU: an adapter of zeros is the base
model bit for bit; an adapter from a directory and the same one from tensors give the same
tokens; one batch mixes adapters and the base model as separate runs would; replace_lora takes
effect and replacing back restores the tokens exactly; bad adapters change nothing."""

import json
import os
import shutil
import tempfile
import unittest

import numpy as np

import fp8llm
from fixtures import NO_REGISTRY, PROMPT, TINY_LLAMA, f32_to_bf16, write_safetensors

HIDDEN, INTER, HEADS, KV_HEADS, HEAD_DIM, LAYERS = 256, 640, 4, 2, 64, 2
MODULES = {
    "self_attn.q_proj": (HEADS * HEAD_DIM, HIDDEN),
    "self_attn.k_proj": (KV_HEADS * HEAD_DIM, HIDDEN),
    "self_attn.v_proj": (KV_HEADS * HEAD_DIM, HIDDEN),
    "self_attn.o_proj": (HIDDEN, HEADS * HEAD_DIM),
    "mlp.gate_proj": (INTER, HIDDEN),
    "mlp.up_proj": (INTER, HIDDEN),
    "mlp.down_proj": (HIDDEN, INTER),
}
GREEDY = fp8llm.SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)


def adapter(rank=8, seed=0, scale=0.05, zeros=False):
    """PEFT names -> BF16 bits (uint16), and the adapter config."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in range(LAYERS):
        for module, (out_dim, in_dim) in MODULES.items():
            base = f"base_model.model.model.layers.{layer}.{module}"
            a = rng.standard_normal((rank, in_dim)).astype(np.float32) * scale
            b = rng.standard_normal((out_dim, rank)).astype(np.float32) * scale
            if zeros:
                b[:] = 0
            tensors[base + ".lora_A.weight"] = f32_to_bf16(a)
            tensors[base + ".lora_B.weight"] = f32_to_bf16(b)
    config = {
        "peft_type": "LORA",
        "r": rank,
        "lora_alpha": 2 * rank,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                           "down_proj"],
        "use_rslora": False,
        "bias": "none",
    }
    return tensors, config


def bf16(tensors):
    """The tensors as LLM takes BF16 bits."""
    return {k: fp8llm.Tensor.bf16(v) if v.dtype == np.uint16 else v for k, v in tensors.items()}


def tokens(outputs):
    return [o.outputs[0].token_ids for o in outputs]


class Lora(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        cls.llm = fp8llm.LLM(TINY_LLAMA, quantization="fp8-block", device="cpu", max_context=256,
                             registry=NO_REGISTRY, enable_lora=True, max_loras=4)
        cls.base = tokens(cls.llm.generate(PROMPT, GREEDY, use_tqdm=False))[0]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir)

    def write_adapter(self, name, tensors, config):
        path = os.path.join(self.dir, name)
        os.makedirs(path, exist_ok=True)
        write_safetensors(os.path.join(path, "adapter_model.safetensors"), tensors)
        with open(os.path.join(path, "adapter_config.json"), "w") as f:
            json.dump(config, f)
        return path

    def test_an_adapter_of_zeros_is_the_base_model(self):
        t, c = adapter(zeros=True)
        self.llm.add_lora("zeros", bf16(t), c)
        try:
            got = tokens(self.llm.generate(PROMPT, GREEDY, use_tqdm=False, lora_request="zeros"))
            self.assertEqual(got[0], self.base)
        finally:
            self.llm.remove_lora("zeros")

    def test_a_directory_and_tensors_give_the_same_tokens(self):
        t, c = adapter(seed=1)
        path = self.write_adapter("one", t, c)
        request = fp8llm.LoRARequest("from-dir", 1, path)
        from_dir = tokens(self.llm.generate(PROMPT, GREEDY, use_tqdm=False,
                                            lora_request=request))[0]
        self.assertIn("from-dir", self.llm.list_loras())
        self.assertNotEqual(from_dir, self.base)
        self.llm.add_lora("from-tensors", bf16(t), json.dumps(c))
        from_tensors = tokens(self.llm.generate(PROMPT, GREEDY, use_tqdm=False,
                                                lora_request="from-tensors"))[0]
        self.assertEqual(from_dir, from_tensors)
        # The same name from another directory is refused rather than silently reused.
        other = self.write_adapter("other", *adapter(seed=2))
        with self.assertRaisesRegex(fp8llm.Error, "from-dir"):
            self.llm.generate(PROMPT, GREEDY, use_tqdm=False,
                              lora_request=fp8llm.LoRARequest("from-dir", 1, other))
        self.llm.remove_lora("from-dir")
        self.llm.remove_lora(fp8llm.LoRARequest("from-tensors"))
        self.assertNotIn("from-dir", self.llm.list_loras())

    def test_one_batch_mixes_adapters_and_the_base_model(self):
        x, cx = adapter(seed=3)
        y, cy = adapter(seed=4, rank=16)
        self.llm.add_lora("x", bf16(x), cx)
        self.llm.add_lora("y", bf16(y), cy)
        try:
            prompts = [PROMPT, PROMPT[:5], PROMPT, PROMPT[2:]]
            loras = ["x", None, "y", "x"]
            mixed = tokens(self.llm.generate(prompts, GREEDY, use_tqdm=False,
                                             lora_request=loras))
            for p, l, got in zip(prompts, loras, mixed):
                alone = tokens(self.llm.generate(p, GREEDY, use_tqdm=False, lora_request=l))[0]
                self.assertEqual(got, alone)
            self.assertNotEqual(mixed[0], mixed[2])
        finally:
            self.llm.remove_lora("x")
            self.llm.remove_lora("y")

    def test_replace_takes_effect_and_replacing_back_restores(self):
        first, c = adapter(seed=5)
        second, _ = adapter(seed=6)
        self.llm.add_lora("r", bf16(first), c)
        try:
            before = tokens(self.llm.generate(PROMPT, GREEDY, use_tqdm=False, lora_request="r"))
            self.llm.replace_lora("r", bf16(second))
            after = tokens(self.llm.generate(PROMPT, GREEDY, use_tqdm=False, lora_request="r"))
            self.assertNotEqual(before, after)
            self.llm.replace_lora("r", bf16(first))
            again = tokens(self.llm.generate(PROMPT, GREEDY, use_tqdm=False, lora_request="r"))
            self.assertEqual(before, again)
        finally:
            self.llm.remove_lora("r")

    def test_bad_adapters_are_errors_that_change_nothing(self):
        t, c = adapter(seed=7)
        self.llm.add_lora("good", bf16(t), c)
        try:
            reference = tokens(self.llm.generate(PROMPT, GREEDY, use_tqdm=False,
                                                 lora_request="good"))
            name = "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight"
            bad = dict(t)
            bad[name] = bad[name][:, :4].copy()
            with self.assertRaisesRegex(fp8llm.Error, "up_proj.lora_B"):
                self.llm.replace_lora("good", bf16(bad))
            nan = dict(t)
            values = np.zeros(nan[name].shape, np.float32)
            values[3, 2] = np.nan
            nan[name] = values
            with self.assertRaisesRegex(fp8llm.Error, "up_proj.lora_B"):
                self.llm.replace_lora("good", bf16(nan))
            missing = {k: v for k, v in t.items() if k != name}
            with self.assertRaisesRegex(fp8llm.Error, "up_proj"):
                self.llm.add_lora("missing", bf16(missing), c)
            self.assertNotIn("missing", self.llm.list_loras())
            with self.assertRaisesRegex(fp8llm.Error, "no-such"):
                self.llm.generate(PROMPT, GREEDY, use_tqdm=False, lora_request="no-such")
            with self.assertRaisesRegex(fp8llm.Error, "config"):
                self.llm.add_lora("no-config", bf16(t))
            with self.assertRaisesRegex(fp8llm.Error, "lora_path"):
                self.llm.add_lora(fp8llm.LoRARequest("no-path"))
            with self.assertRaisesRegex(fp8llm.Error, "lora_request"):
                self.llm.generate([PROMPT, PROMPT], GREEDY, use_tqdm=False,
                                  lora_request=["good"])
            self.assertEqual(tokens(self.llm.generate(PROMPT, GREEDY, use_tqdm=False,
                                                      lora_request="good")), reference)
        finally:
            self.llm.remove_lora("good")

    def test_an_engine_without_lora_refuses_adapters(self):
        llm = fp8llm.LLM(TINY_LLAMA, quantization="fp8-block", device="cpu", max_context=64,
                         registry=NO_REGISTRY)
        with self.assertRaises(fp8llm.Error):
            t, c = adapter()
            llm.add_lora("x", bf16(t), c)


if __name__ == "__main__":
    unittest.main()
