"""tensor_parallel_size on the CPU: two ranks (threads, each holding a shard of every layer) give
the single rank's greedy tokens, with a LoRA adapter too; a size that does not divide the model
is an error."""

import unittest

import fp8llm
from fixtures import NO_REGISTRY, PROMPT, TINY_LLAMA
from test_lora import adapter, bf16

GREEDY = fp8llm.SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)


class TensorParallel(unittest.TestCase):
    def test_two_ranks_give_the_single_ranks_greedy_tokens(self):
        prompts = [PROMPT, PROMPT[3:], PROMPT[:4]]
        runs = []
        for tp in (1, 2):
            llm = fp8llm.LLM(TINY_LLAMA, quantization="fp8-block", device="cpu",
                             max_context=128, registry=NO_REGISTRY, tensor_parallel_size=tp)
            runs.append([o.outputs[0].token_ids for o in llm.generate(prompts, GREEDY, use_tqdm=False)])
        self.assertEqual(runs[0], runs[1])

    def test_two_ranks_apply_an_adapter_as_one_rank_does(self):
        tensors, config = adapter(seed=11)
        runs = []
        for tp in (1, 2):
            llm = fp8llm.LLM(TINY_LLAMA, quantization="none", device="cpu", max_context=128,
                             registry=NO_REGISTRY, tensor_parallel_size=tp, enable_lora=True)
            llm.add_lora("a", bf16(tensors), config)
            runs.append([o.outputs[0].token_ids for o in llm.generate(
                [PROMPT, PROMPT[2:]], GREEDY, use_tqdm=False, lora_request=["a", None])])
        self.assertEqual(runs[0], runs[1])

    def test_a_size_that_does_not_divide_the_model_is_an_error(self):
        with self.assertRaisesRegex(fp8llm.Error, "3"):
            fp8llm.LLM(TINY_LLAMA, quantization="fp8-block", device="cpu", max_context=64,
                       registry=NO_REGISTRY, tensor_parallel_size=3)


if __name__ == "__main__":
    unittest.main()
