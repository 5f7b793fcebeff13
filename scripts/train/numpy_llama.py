"""A Llama decoder in numpy (float32) with its backward pass, for training on a CPU where PyTorch
is not installed (train_cpu.py). Parameters carry Hugging Face's names and layout, so the trained
dict is written straight into model.safetensors; the forward pass is transformers'
LlamaForCausalLM (RMSNorm, RoPE with rotate_half, grouped-query attention, SwiGLU MLP, untied
lm_head). check_gradients() compares the backward pass with finite differences.
"""
from dataclasses import dataclass

import numpy as np


@dataclass
class Shape:
    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    mlp: int
    rope_theta: float = 10000.0
    eps: float = 1e-5


def layer_names(i):
    p = f"model.layers.{i}."
    return {k: p + v for k, v in {
        "ln1": "input_layernorm.weight", "q": "self_attn.q_proj.weight",
        "k": "self_attn.k_proj.weight", "v": "self_attn.v_proj.weight",
        "o": "self_attn.o_proj.weight", "ln2": "post_attention_layernorm.weight",
        "gate": "mlp.gate_proj.weight", "up": "mlp.up_proj.weight",
        "down": "mlp.down_proj.weight"}.items()}


def init_params(s, rng, std=0.02):
    """GPT-2's initialization: normal(0, std), the projections into the residual stream scaled
    by 1/sqrt(2 * layers), norms at one."""
    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape) * std * scale).astype(np.float32)

    residual = 1.0 / np.sqrt(2 * s.layers)
    p = {"model.embed_tokens.weight": normal(s.vocab, s.hidden)}
    for i in range(s.layers):
        n = layer_names(i)
        p[n["ln1"]] = np.ones(s.hidden, np.float32)
        p[n["q"]] = normal(s.heads * s.head_dim, s.hidden)
        p[n["k"]] = normal(s.kv_heads * s.head_dim, s.hidden)
        p[n["v"]] = normal(s.kv_heads * s.head_dim, s.hidden)
        p[n["o"]] = normal(s.hidden, s.heads * s.head_dim, scale=residual)
        p[n["ln2"]] = np.ones(s.hidden, np.float32)
        p[n["gate"]] = normal(s.mlp, s.hidden)
        p[n["up"]] = normal(s.mlp, s.hidden)
        p[n["down"]] = normal(s.hidden, s.mlp, scale=residual)
    p["model.norm.weight"] = np.ones(s.hidden, np.float32)
    p["lm_head.weight"] = normal(s.vocab, s.hidden)
    return p


def rope_tables(s, length):
    inv = 1.0 / (s.rope_theta ** (np.arange(0, s.head_dim, 2, dtype=np.float64) / s.head_dim))
    freqs = np.outer(np.arange(length, dtype=np.float64), inv)
    emb = np.concatenate([freqs, freqs], axis=-1)
    return np.cos(emb).astype(np.float32), np.sin(emb).astype(np.float32)


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def rotate_half_t(x):  # the transpose of rotate_half, for the backward pass
    h = x.shape[-1] // 2
    return np.concatenate([x[..., h:], -x[..., :h]], axis=-1)


def rms_norm(x, w, eps):
    r = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return x * r * w, r


def rms_norm_backward(dy, x, r, w):
    dxhat = dy * w
    dw = np.sum(dy * x * r, axis=tuple(range(dy.ndim - 1)))
    dx = r * dxhat - x * (r ** 3) * np.mean(dxhat * x, axis=-1, keepdims=True)
    return dx, dw


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class Model:
    def __init__(self, shape, params):
        self.s = shape
        self.p = params

    def _forward(self, x, caches=None):
        """The decoder over token ids x [B, T]: the last hidden state h, the final norm's output
        f and its inverse RMS rf, the RoPE tables and the score scale; with `caches` (a list),
        each layer's intermediates for the backward pass are appended to it."""
        s, p = self.s, self.p
        B, T = x.shape
        H, KV, hd = s.heads, s.kv_heads, s.head_dim
        G = H // KV
        cos, sin = rope_tables(s, T)
        scale = np.float32(1.0 / np.sqrt(hd))
        mask = np.triu(np.full((T, T), -np.inf, np.float32), k=1)
        h = p["model.embed_tokens.weight"][x]
        for i in range(s.layers):
            n = layer_names(i)
            c = {"h_in": h}
            a, c["r1"] = rms_norm(h, p[n["ln1"]], s.eps)
            c["a"] = a
            q = (a @ p[n["q"]].T).reshape(B, T, KV, G, hd).transpose(0, 2, 3, 1, 4)
            k = (a @ p[n["k"]].T).reshape(B, T, KV, hd).transpose(0, 2, 1, 3)
            v = (a @ p[n["v"]].T).reshape(B, T, KV, hd).transpose(0, 2, 1, 3)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            scores = (q @ k[:, :, None].swapaxes(-1, -2)) * scale + mask
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            o = probs @ v[:, :, None]  # [B, KV, G, T, hd]
            o_flat = o.transpose(0, 3, 1, 2, 4).reshape(B, T, H * hd)
            h = h + o_flat @ p[n["o"]].T
            c.update(q=q, k=k, v=v, probs=probs, o_flat=o_flat, h_mid=h)
            m, c["r2"] = rms_norm(h, p[n["ln2"]], s.eps)
            g = m @ p[n["gate"]].T
            u = m @ p[n["up"]].T
            sg = sigmoid(g)
            act = g * sg * u
            h = h + act @ p[n["down"]].T
            c.update(m=m, g=g, u=u, sg=sg, act=act)
            if caches is not None:
                caches.append(c)
        f, rf = rms_norm(h, p["model.norm.weight"], s.eps)
        return h, f, rf, cos, sin, scale

    def loss_and_grads(self, x, y, want_grads=True):
        """Mean cross entropy of next tokens y [B, T] given x [B, T], and its gradients."""
        s, p = self.s, self.p
        B, T = x.shape
        H, KV, hd = s.heads, s.kv_heads, s.head_dim
        G = H // KV
        caches = []
        h, f, rf, cos, sin, scale = self._forward(x, caches if want_grads else None)
        logits = f.reshape(B * T, -1) @ p["lm_head.weight"].T
        logits -= logits.max(axis=-1, keepdims=True)
        e = np.exp(logits)
        z = e.sum(axis=-1, keepdims=True)
        targets = y.reshape(-1)
        rows = np.arange(B * T)
        loss = float(np.mean(np.log(z[:, 0]) - logits[rows, targets]))
        if not want_grads:
            return loss, None
        grads = {}
        dlogits = e / z
        dlogits[rows, targets] -= 1.0
        dlogits /= B * T
        grads["lm_head.weight"] = dlogits.T @ f.reshape(B * T, -1)
        df = (dlogits @ p["lm_head.weight"]).reshape(B, T, -1)
        dh, grads["model.norm.weight"] = rms_norm_backward(df, h, rf, p["model.norm.weight"])
        for i in reversed(range(s.layers)):
            n, c = layer_names(i), caches[i]
            # MLP
            grads[n["down"]] = dh.reshape(B * T, -1).T @ c["act"].reshape(B * T, -1)
            dact = dh @ p[n["down"]]
            sg, g, u = c["sg"], c["g"], c["u"]
            du = dact * g * sg
            dg = dact * u * sg * (1.0 + g * (1.0 - sg))
            m2 = c["m"].reshape(B * T, -1)
            grads[n["gate"]] = dg.reshape(B * T, -1).T @ m2
            grads[n["up"]] = du.reshape(B * T, -1).T @ m2
            dm = dg @ p[n["gate"]] + du @ p[n["up"]]
            dmid, grads[n["ln2"]] = rms_norm_backward(dm, c["h_mid"], c["r2"], p[n["ln2"]])
            dh = dh + dmid
            # Attention
            grads[n["o"]] = dh.reshape(B * T, -1).T @ c["o_flat"].reshape(B * T, -1)
            do = (dh @ p[n["o"]]).reshape(B, T, KV, G, hd).transpose(0, 2, 3, 1, 4)
            probs, q, k, v = c["probs"], c["q"], c["k"], c["v"]
            dv = (probs.swapaxes(-1, -2) @ do).sum(axis=2)
            dp = do @ v[:, :, None].swapaxes(-1, -2)
            ds = probs * (dp - np.sum(dp * probs, axis=-1, keepdims=True)) * scale
            dq = ds @ k[:, :, None]
            dk = (ds.swapaxes(-1, -2) @ q).sum(axis=2)
            dq = dq * cos + rotate_half_t(dq * sin)
            dk = dk * cos + rotate_half_t(dk * sin)
            dq = dq.transpose(0, 3, 1, 2, 4).reshape(B * T, H * hd)
            dk = dk.transpose(0, 2, 1, 3).reshape(B * T, KV * hd)
            dv = dv.transpose(0, 2, 1, 3).reshape(B * T, KV * hd)
            a2 = c["a"].reshape(B * T, -1)
            grads[n["q"]] = dq.T @ a2
            grads[n["k"]] = dk.T @ a2
            grads[n["v"]] = dv.T @ a2
            da = (dq @ p[n["q"]] + dk @ p[n["k"]] + dv @ p[n["v"]]).reshape(B, T, -1)
            din, grads[n["ln1"]] = rms_norm_backward(da, c["h_in"], c["r1"], p[n["ln1"]])
            dh = dh + din
        demb = np.zeros_like(p["model.embed_tokens.weight"])
        np.add.at(demb, x.reshape(-1), dh.reshape(B * T, -1))
        grads["model.embed_tokens.weight"] = demb
        return loss, grads

    def logits(self, ids):
        """Logits [len, vocab] of one fresh sequence."""
        ids = np.asarray(ids)
        _, f, _, _, _, _ = self._forward(ids[None])
        return f.reshape(len(ids), -1) @ self.p["lm_head.weight"].T


def check_gradients(seed=0, samples=6):
    """Largest relative error between the backward pass and central differences (float64) on a
    small model; train_cpu.py refuses to train when it is not small."""
    rng = np.random.default_rng(seed)
    s = Shape(vocab=40, hidden=16, layers=2, heads=4, kv_heads=2, head_dim=8, mlp=24)
    params = {k: v.astype(np.float64) for k, v in init_params(s, rng, std=0.3).items()}
    for k in params:
        if k.endswith("layernorm.weight") or k == "model.norm.weight":
            params[k] = params[k] + rng.standard_normal(params[k].shape) * 0.2
    model = Model(s, params)
    x = rng.integers(0, s.vocab, (2, 7))
    y = rng.integers(0, s.vocab, (2, 7))
    _, grads = model.loss_and_grads(x, y)
    worst = 0.0
    for name, w in params.items():
        for _ in range(samples):
            idx = tuple(rng.integers(0, d) for d in w.shape)
            keep = w[idx]
            w[idx] = keep + 1e-6
            plus, _ = model.loss_and_grads(x, y, want_grads=False)
            w[idx] = keep - 1e-6
            minus, _ = model.loss_and_grads(x, y, want_grads=False)
            w[idx] = keep
            numeric = (plus - minus) / 2e-6
            err = abs(numeric - grads[name][idx]) / max(1e-6, abs(numeric) + abs(grads[name][idx]))
            worst = max(worst, err)
    return worst
