"""LLM over the CPU engine: loading and its summary, generation from text and token ids (greedy
tokens are the argmax of the logits; sampled tokens' logprobs are the log-softmax of the logits),
stop strings, chat, and errors as fp8llm.Error."""

import unittest

import numpy as np

import fp8llm
from fixtures import NO_REGISTRY, PROMPT, TINY_LLAMA, log_softmax


class Generate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.llm = fp8llm.LLM(TINY_LLAMA, quantization="fp8-block", device="cpu", max_context=256,
                             registry=NO_REGISTRY)

    def test_load_summary(self):
        s = self.llm.load_summary
        self.assertEqual(s["quantization"], "fp8-block")
        self.assertEqual(s["quantized_tensors"], 14)
        self.assertGreater(s["resident_bytes"], 0)
        self.assertGreater(s["kv_blocks"], 0)
        self.assertTrue(any(step["name"] == "stream weights" for step in s["steps"]))

    def test_greedy_tokens_are_the_argmax_of_the_logits(self):
        out = self.llm.generate(PROMPT, fp8llm.SamplingParams(temperature=0, max_tokens=6,
                                                              ignore_eos=True), use_tqdm=False)
        self.assertEqual(len(out), 1)
        self.assertEqual(out[0].prompt_token_ids, PROMPT)
        got = out[0].outputs[0].token_ids
        self.assertEqual(len(got), 6)
        ids = list(PROMPT)
        for token in got:
            self.assertEqual(int(np.argmax(self.llm.logits(ids)[-1])), token)
            ids.append(token)
        self.assertEqual(out[0].outputs[0].finish_reason, "length")

    def test_sampled_logprobs_are_the_log_softmax_of_the_logits(self):
        params = fp8llm.SamplingParams(n=3, temperature=1.0, seed=7, max_tokens=5, logprobs=2,
                                       ignore_eos=True)
        out = self.llm.generate([PROMPT, {"prompt_token_ids": PROMPT[:5]}], params,
                                use_tqdm=False)
        self.assertEqual([len(o.outputs) for o in out], [3, 3])
        for o in out:
            for c in o.outputs:
                self.assertEqual(len(c.logprobs), len(c.token_ids))
                ids = list(o.prompt_token_ids)
                total = 0.0
                for token, entry in zip(c.token_ids, c.logprobs):
                    want = log_softmax(self.llm.logits(ids)[-1])
                    self.assertAlmostEqual(entry[token].logprob, want[token], delta=1e-4)
                    top = sorted(entry.items(), key=lambda kv: kv[1].rank or 99)[:2]
                    self.assertEqual([t for t, _ in top], list(np.argsort(-want)[:2]))
                    total += entry[token].logprob
                    ids.append(token)
                self.assertAlmostEqual(c.cumulative_logprob, total, places=4)
        # Same seed, same tokens.
        again = self.llm.generate([PROMPT], params, use_tqdm=False)
        self.assertEqual([c.token_ids for c in again[0].outputs],
                         [c.token_ids for c in out[0].outputs])

    def test_prompt_logprobs_are_the_log_softmax_of_the_logits(self):
        params = fp8llm.SamplingParams(temperature=0, max_tokens=2, prompt_logprobs=2)
        out = self.llm.generate({"prompt_token_ids": PROMPT}, params, use_tqdm=False)[0]
        self.assertEqual(len(out.prompt_logprobs), len(PROMPT))
        self.assertIsNone(out.prompt_logprobs[0])
        logits = self.llm.logits(PROMPT)
        for p in range(1, len(PROMPT)):
            want = log_softmax(logits[p - 1])
            entry = out.prompt_logprobs[p]
            self.assertAlmostEqual(entry[PROMPT[p]].logprob, want[PROMPT[p]], delta=1e-5)
            ranked = sorted((t for t in entry if entry[t].rank), key=lambda t: entry[t].rank)
            self.assertEqual(ranked, list(np.argsort(-want, kind="stable")[:2]))
        plain = self.llm.generate({"prompt_token_ids": PROMPT},
                                  fp8llm.SamplingParams(temperature=0, max_tokens=2),
                                  use_tqdm=False)[0]
        self.assertIsNone(plain.prompt_logprobs)
        self.assertEqual(plain.outputs[0].token_ids, out.outputs[0].token_ids)

    def test_min_tokens_holds_back_the_stop_tokens(self):
        free = self.llm.generate({"prompt_token_ids": PROMPT},
                                 fp8llm.SamplingParams(temperature=0, max_tokens=6,
                                                       ignore_eos=True), use_tqdm=False)
        first = free[0].outputs[0].token_ids[0]
        stopped = self.llm.generate({"prompt_token_ids": PROMPT},
                                    fp8llm.SamplingParams(temperature=0, max_tokens=6,
                                                          stop_token_ids=[first]),
                                    use_tqdm=False)
        self.assertEqual(stopped[0].outputs[0].token_ids, [first])
        held = self.llm.generate({"prompt_token_ids": PROMPT},
                                 fp8llm.SamplingParams(temperature=0, max_tokens=6, min_tokens=3,
                                                       stop_token_ids=[first]),
                                 use_tqdm=False)
        tokens = held[0].outputs[0].token_ids
        self.assertGreaterEqual(len(tokens), 3)
        self.assertNotIn(first, tokens[:3])

    def test_logit_bias_moves_the_draw(self):
        greedy = fp8llm.SamplingParams(temperature=0, max_tokens=1, ignore_eos=True)
        top = self.llm.generate({"prompt_token_ids": PROMPT}, greedy,
                                use_tqdm=False)[0].outputs[0].token_ids[0]
        pushed = self.llm.generate({"prompt_token_ids": PROMPT}, fp8llm.SamplingParams(
            temperature=0, max_tokens=1, ignore_eos=True, logit_bias={top: -100, 17: 100}),
            use_tqdm=False)[0].outputs[0].token_ids[0]
        self.assertEqual(pushed, 17)
        with self.assertRaises(fp8llm.Error) as e:
            self.llm.generate(PROMPT, fp8llm.SamplingParams(logit_bias={5: 300}), use_tqdm=False)
        self.assertIn("logit_bias", str(e.exception))

    def test_text_prompts_and_stop_strings(self):
        greedy = fp8llm.SamplingParams(temperature=0, max_tokens=12, ignore_eos=True)
        out = self.llm.generate(["Hello there", "Once upon"], greedy, use_tqdm=True)
        self.assertEqual([o.prompt for o in out], ["Hello there", "Once upon"])
        first = out[0].outputs[0]
        self.assertEqual(out[0].prompt_token_ids, self.llm.encode("Hello there"))
        self.assertEqual(first.text, self.llm.decode(first.token_ids))
        self.assertGreater(len(first.text), 4)
        stop = first.text[2:4]
        stopped = self.llm.generate("Hello there", fp8llm.SamplingParams(
            temperature=0, max_tokens=12, ignore_eos=True, stop=[stop]), use_tqdm=False)
        c = stopped[0].outputs[0]
        self.assertEqual(c.finish_reason, "stop")
        self.assertEqual(c.text, first.text[:first.text.index(stop)])
        kept = self.llm.generate("Hello there", fp8llm.SamplingParams(
            temperature=0, max_tokens=12, ignore_eos=True, stop=[stop],
            include_stop_str_in_output=True), use_tqdm=False)[0].outputs[0]
        self.assertEqual(kept.text, first.text[:first.text.index(stop) + len(stop)])
        bare = self.llm.generate("Hello there", fp8llm.SamplingParams(
            temperature=0, max_tokens=12, ignore_eos=True, detokenize=False), use_tqdm=False)
        self.assertEqual(bare[0].outputs[0].text, "")
        self.assertEqual(bare[0].outputs[0].token_ids, first.token_ids)
        with self.assertRaises(fp8llm.Error):
            self.llm.generate("Hello there", fp8llm.SamplingParams(stop=["x"], detokenize=False),
                              use_tqdm=False)

    def test_chat(self):
        messages = [{"role": "user", "content": "Say hi"}]
        out = self.llm.chat(messages, fp8llm.SamplingParams(temperature=0, max_tokens=4),
                            use_tqdm=False)
        self.assertIn("Say hi", out[0].prompt)
        many = self.llm.chat([messages, messages], fp8llm.SamplingParams(temperature=0,
                                                                          max_tokens=4),
                             use_tqdm=False)
        self.assertEqual(len(many), 2)
        self.assertEqual(many[1].outputs[0].token_ids, out[0].outputs[0].token_ids)

    def test_reset_prefix_cache(self):
        # 40 tokens: two full blocks of 16 for the prefix cache.
        ids = [(7 * i) % 1000 + 5 for i in range(40)]
        params = fp8llm.SamplingParams(temperature=0, max_tokens=3, ignore_eos=True)
        first = self.llm.generate({"prompt_token_ids": ids}, params, use_tqdm=False)
        hits = self.llm.stats()["prefix_hit_tokens"]
        self.llm.generate({"prompt_token_ids": ids}, params, use_tqdm=False)
        self.assertEqual(self.llm.stats()["prefix_hit_tokens"], hits + 32)
        self.assertTrue(self.llm.reset_prefix_cache())
        again = self.llm.generate({"prompt_token_ids": ids}, params, use_tqdm=False)
        self.assertEqual(self.llm.stats()["prefix_hit_tokens"], hits + 32)
        self.assertEqual(again[0].outputs[0].token_ids, first[0].outputs[0].token_ids)

    def test_errors_are_fp8llm_errors(self):
        with self.assertRaises(fp8llm.Error) as e:
            self.llm.generate(PROMPT, fp8llm.SamplingParams(temperature=-1), use_tqdm=False)
        self.assertIsInstance(e.exception, ValueError)
        self.assertIsInstance(e.exception, RuntimeError)
        self.assertIn("temperature", str(e.exception))
        with self.assertRaises(fp8llm.Error):
            self.llm.generate([[5, 100000]], use_tqdm=False)
        with self.assertRaises(fp8llm.Error) as e:
            fp8llm.LLM("/nonexistent/model", device="cpu", registry=NO_REGISTRY)
        self.assertIn("/nonexistent/model", str(e.exception))
        with self.assertRaises(fp8llm.Error):
            fp8llm.LLM(TINY_LLAMA, quantization="fp4", device="cpu", registry=NO_REGISTRY)
        # The engine is still usable after failed calls.
        self.assertEqual(len(self.llm.generate(PROMPT, use_tqdm=False)[0].outputs), 1)


if __name__ == "__main__":
    unittest.main()
