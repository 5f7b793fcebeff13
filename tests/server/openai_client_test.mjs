// The official OpenAI client for Node, and curl, against `fp8llm serve` on the tiny test model:
// completions and chat, streaming and not, n = 3, logprobs, stop strings, errors, the API key,
// and greedy tokens equal to `fp8llm generate`. Exits non-zero on the first failed check.
// Usage: node openai_client_test.mjs FP8LLM_BINARY MODEL_DIR NODE_MODULES_PARENT
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const [cli, modelDir, work] = process.argv.slice(2);
const openaiModule = createRequire(path.join(path.resolve(work), 'package.json'))('openai');
const OpenAI = openaiModule.OpenAI ?? openaiModule;
const KEY = 'test-key-1234';
const MODEL = path.basename(modelDir);

function startServer() {
  const server = spawn(cli, ['serve', '--model', modelDir, '--port', '0', '--api-key', KEY], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const port = new Promise((resolve, reject) => {
    server.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    server.on('exit', (code) => reject(new Error(`server exited early (${code}):\n${log}`)));
  });
  const exited = new Promise((resolve) => server.on('exit', (code, signal) => resolve({ code, signal })));
  return { server, port, exited, log: () => log };
}

async function post(base, route, body) {
  const res = await fetch(base + route, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, `${route}: ${await res.clone().text()}`);
  return res.json();
}

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

// A two-character ASCII piece of `text` from its third character on (random weights write any
// bytes), to stop at.
function stopPiece(text) {
  for (let i = 2; i + 1 < text.length; ++i) {
    if (text.charCodeAt(i) < 128 && text.charCodeAt(i + 1) < 128) return text.slice(i, i + 2);
  }
  throw new Error(`no ASCII pair to stop at in ${JSON.stringify(text)}`);
}

async function expectStatus(promise, status, param) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.status, status, String(e));
    if (param !== undefined) assert.equal(e.param, param, String(e));
    return true;
  });
}

const checks = [];
function check(name, fn) {
  checks.push({ name, fn });
}

check('models.list names the model by its directory', async ({ client }) => {
  const models = [];
  for await (const m of client.models.list()) models.push(m);
  assert.equal(models.length, 1);
  assert.equal(models[0].id, MODEL);
});

check('greedy completion tokens equal fp8llm generate', async ({ client, base, state }) => {
  const { tokens } = await post(base, '/tokenize', { prompt: 'The quick brown fox' });
  // Both stop at the model's EOS tokens.
  const r = await client.completions.create({
    model: MODEL, prompt: tokens, max_tokens: 12, temperature: 0, return_token_ids: true,
  });
  const offline = JSON.parse(execFileSync(cli, ['generate', '--model', modelDir, '--quiet',
    '--prompt-ids', tokens.join(','), '--max-tokens', '12', '--json'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString());
  assert.deepEqual(r.choices[0].token_ids, offline.tokens);
  assert.equal(r.choices[0].finish_reason, offline.finish_reason);
  const n = offline.tokens.length;
  assert.deepEqual(r.usage, { prompt_tokens: tokens.length, completion_tokens: n, total_tokens: tokens.length + n });
  const { prompt } = await post(base, '/detokenize', { tokens: offline.tokens });
  assert.equal(r.choices[0].text, prompt);
});

check('a text prompt gives the same greedy text as its ids, streamed or not', async ({ client, base, state }) => {
  const prompt = 'The quick brown fox';
  const { tokens } = await post(base, '/tokenize', { prompt });
  const req = { model: MODEL, prompt, max_tokens: 12, temperature: 0, ignore_eos: true };
  const whole = await client.completions.create(req);
  const byIds = await client.completions.create({ ...req, prompt: tokens });
  assert.equal(whole.choices[0].text, byIds.choices[0].text);
  state.greedy = { prompt, text: whole.choices[0].text };
  const chunks = await collect(await client.completions.create({ ...req, stream: true, stream_options: { include_usage: true } }));
  const text = chunks.flatMap((c) => c.choices.map((x) => x.text)).join('');
  assert.equal(text, state.greedy.text);
  const finishes = chunks.flatMap((c) => c.choices.map((x) => x.finish_reason)).filter((f) => f);
  assert.deepEqual(finishes, ['length']);
  const last = chunks.at(-1);
  assert.equal(last.choices.length, 0);
  assert.equal(last.usage.completion_tokens, 12);
});

check('n = 3 with a seed: three samples, reproducible', async ({ client }) => {
  const req = { model: MODEL, prompt: 'Once upon a time', n: 3, temperature: 1, seed: 7, max_tokens: 10, ignore_eos: true };
  const a = await client.completions.create(req);
  const b = await client.completions.create(req);
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1, 2]);
  assert.equal(a.usage.completion_tokens, 30);
  assert.deepEqual(a.choices.map((c) => c.text), b.choices.map((c) => c.text));
  assert.ok(new Set(a.choices.map((c) => c.text)).size > 1, 'three identical samples');
  const chunks = await collect(await client.completions.create({ ...req, stream: true }));
  const streamed = [0, 1, 2].map((i) => chunks.flatMap((c) => c.choices.filter((x) => x.index === i).map((x) => x.text)).join(''));
  assert.deepEqual(streamed, a.choices.map((c) => c.text));
});

check('completion logprobs: the greedy token is the most likely one', async ({ client }) => {
  const r = await client.completions.create({ model: MODEL, prompt: 'Hello', max_tokens: 6, temperature: 0, logprobs: 3, ignore_eos: true });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.tokens.length, 6);
  assert.equal(lp.token_logprobs.length, 6);
  for (let i = 0; i < 6; ++i) {
    assert.ok(lp.token_logprobs[i] <= 0);
    const top = Object.values(lp.top_logprobs[i]);
    assert.ok(top.length >= 3 && top.length <= 4);
    assert.ok(Math.abs(Math.max(...top) - lp.token_logprobs[i]) < 1e-6);
    if (i > 0) assert.ok(lp.text_offset[i] >= lp.text_offset[i - 1]);
  }
});

check('chat: template, streaming equals whole, logprobs', async ({ client, base }) => {
  const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello!' }];
  const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 8, temperature: 0 });
  const { count } = await post(base, '/tokenize', { messages });
  assert.equal(r.usage.prompt_tokens, count);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  const chunks = await collect(await client.chat.completions.create({ model: MODEL, messages, max_tokens: 8, temperature: 0, stream: true }));
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), r.choices[0].message.content);
  const l = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 2 });
  assert.equal(l.choices[0].logprobs.content.length, l.usage.completion_tokens);
  for (const t of l.choices[0].logprobs.content) {
    assert.equal(t.top_logprobs.length, 2);
    assert.ok(Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-6);
  }
});

check('stop strings end the text before them, streamed or not', async ({ client, state }) => {
  const stop = stopPiece(state.greedy.text);
  const want = state.greedy.text.slice(0, state.greedy.text.indexOf(stop));
  const req = { model: MODEL, prompt: state.greedy.prompt, max_tokens: 12, temperature: 0, ignore_eos: true, stop: [stop] };
  const r = await client.completions.create(req);
  assert.equal(r.choices[0].text, want);
  assert.equal(r.choices[0].finish_reason, 'stop');
  const chunks = await collect(await client.completions.create({ ...req, stream: true }));
  assert.equal(chunks.map((c) => c.choices[0]?.text ?? '').join(''), want);
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
});

check('errors: 400 naming the field, 404 for another model, 401 without the key', async ({ client, base }) => {
  await expectStatus(client.completions.create({ model: MODEL, prompt: 'x', top_p: 2 }), 400, 'top_p');
  await expectStatus(client.chat.completions.create({ model: MODEL, messages: [], max_tokens: 2 }), 400, 'messages');
  await expectStatus(client.completions.create({ model: 'no-such-model', prompt: 'x' }), 404, 'model');
  const stranger = new OpenAI({ baseURL: base + '/v1', apiKey: 'wrong', maxRetries: 0 });
  await expectStatus(stranger.models.list(), 401);
});

check('curl: a chat stream as server-sent events, health and metrics', async ({ base }) => {
  const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5, stream: true });
  const out = execFileSync('curl', ['-sS', '-N', '-H', `Authorization: Bearer ${KEY}`, '-H', 'Content-Type: application/json', '-d', body, base + '/v1/chat/completions']).toString();
  const events = out.split('\n\n').filter((e) => e.length > 0);
  for (const e of events) assert.ok(e.startsWith('data: '), e);
  assert.equal(events.at(-1), 'data: [DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
  assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
  assert.equal(execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', base + '/health']).toString(), '200');
  const denied = execFileSync('curl', ['-s', '-w', ' %{http_code}', base + '/v1/models']).toString();
  assert.match(denied, /"type":"authentication_error".* 401$/);
  const metrics = execFileSync('curl', ['-s', base + '/metrics']).toString();
  assert.match(metrics, /^fp8llm_kv_blocks_used 0$/m);
  assert.match(metrics, /^fp8llm_time_to_first_token_seconds_count [1-9]/m);
});

const { server, port, exited, log } = startServer();
let failed = false;
try {
  const base = `http://127.0.0.1:${await port}`;
  const client = new OpenAI({ baseURL: base + '/v1', apiKey: KEY, maxRetries: 0 });
  const state = {};
  for (const { name, fn } of checks) {
    await fn({ client, base, state });
    console.log(`ok   ${name}`);
  }
} catch (e) {
  failed = true;
  console.error(`FAIL ${e.stack ?? e}`);
} finally {
  server.kill('SIGTERM');
}
const { code, signal } = await exited;
if (code !== 0) {
  console.error(`server exit code ${code} (signal ${signal}); its log:\n${log()}`);
  failed = true;
} else if (!/POST \/v1\/chat\/completions 200 .*chatcmpl-/.test(log())) {
  console.error(`no request log lines in the server's log:\n${log()}`);
  failed = true;
} else {
  console.log('ok   SIGTERM: the server exited with code 0');
}
process.exit(failed ? 1 : 0);
