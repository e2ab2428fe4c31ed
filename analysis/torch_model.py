"""A plain PyTorch module of reluscope's model (SPEC §2, docs/model.md), to
load an exported checkpoint (`reluscope export`, then `python3 -m
analysis.export DIR`) and study it in Python:

    from analysis.torch_model import load_exported, evaluate_shard
    model = load_exported("export_dir")              # state_dict.pt + config.json
    logits, acts = model(idx, return_acts=True)      # acts[l]: post-ReLU [B, T, F]
    evaluate_shard(model, "data/val_000000.bin")     # like `reluscope eval --json`

Parameter names and layouts are those of Hugging Face's GPT-2 (Conv1D weights
stored [in, out], like reluscope), so the state_dict of the default model loads
into transformers.GPT2LMHeadModel with the config.json written next to it
(activation_function "relu"; docs/analysis.md, "Checkpoint export").
Every architecture variant of docs/model.md is supported here: pos =
learned | none | rope (half-split rotary on q and k), tie = 1 | 0 (own head),
mlp_bias = 1 | 0, act = relu | relu2.
"""
import json
import math
import os

import numpy as np
import torch
from torch import nn
from torch.nn import functional as fn

LN_EPS = 1e-5


DEFAULT_VARIANT = {"pos": "learned", "tie": "1", "mlp_bias": "1", "act": "relu"}
ACTIVATIONS = {"relu": torch.relu, "relu2": lambda x: torch.relu(x) ** 2}


class Conv1D(nn.Module):
    """y = x @ weight + bias with weight [in, out] (GPT-2's and reluscope's layout)."""

    def __init__(self, n_in, n_out, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None

    def forward(self, x):
        y = x @ self.weight
        return y if self.bias is None else y + self.bias


def rope(x):
    """Half-split rotary embedding of x [B, h, T, hs]: the pair (i, i + hs/2) of
    position t turned by t * 10000^(-2i/hs) (src/attention.c)."""
    T, hs = x.shape[2], x.shape[3]
    half = hs // 2
    t = torch.arange(T, dtype=torch.float64)[:, None]
    angle = t * 10000.0 ** (-2.0 * torch.arange(half, dtype=torch.float64) / hs)[None, :]
    cos = angle.cos().to(torch.float32).to(x.dtype)   # the C tables: double, stored as float
    sin = angle.sin().to(torch.float32).to(x.dtype)
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class Attention(nn.Module):
    def __init__(self, d, h, rotary=False):
        super().__init__()
        self.h, self.rotary = h, rotary
        self.c_attn = Conv1D(d, 3 * d)     # columns: q | k | v, head j at channels j*hs
        self.c_proj = Conv1D(d, d)

    def forward(self, x):
        B, T, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        heads = [t.view(B, T, self.h, d // self.h).transpose(1, 2) for t in (q, k, v)]
        q, k, v = heads
        if self.rotary:
            q, k = rope(q), rope(k)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.h)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        return self.c_proj((att @ v).transpose(1, 2).reshape(B, T, d))


class MLP(nn.Module):
    def __init__(self, d, F, bias=True, act="relu"):
        super().__init__()
        self.c_fc = Conv1D(d, F, bias)       # column f = unit f's input weights, bias = b_in
        self.c_proj = Conv1D(F, d, bias)     # row f = unit f's output weights
        self.act = ACTIVATIONS[act]

    def forward(self, x):
        a = self.act(self.c_fc(x))           # a unit is active where a > 0
        return self.c_proj(a), a


class Block(nn.Module):
    def __init__(self, d, h, F, variant):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=LN_EPS)
        self.attn = Attention(d, h, rotary=variant["pos"] == "rope")
        self.ln_2 = nn.LayerNorm(d, eps=LN_EPS)
        self.mlp = MLP(d, F, bias=variant["mlp_bias"] == "1", act=variant["act"])

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        y, a = self.mlp(self.ln_2(x))
        return x + y, a


class Transformer(nn.Module):
    def __init__(self, L, d, h, F, T, V, variant):
        super().__init__()
        self.wte = nn.Embedding(V, d)
        self.wpe = nn.Embedding(T, d) if variant["pos"] == "learned" else None
        self.h = nn.ModuleList([Block(d, h, F, variant) for _ in range(L)])
        self.ln_f = nn.LayerNorm(d, eps=LN_EPS)


class ReluGPT(nn.Module):
    """GPT-2 layout with a ReLU MLP; by default the output is tied to the token
    embedding (variant: a dict of docs/model.md's variant keys, as model.json)."""

    def __init__(self, L, d, h, F, T, V, variant=None):
        super().__init__()
        self.size = dict(L=L, d=d, h=h, F=F, T=T, V=V)
        self.variant = dict(DEFAULT_VARIANT, **(variant or {}))
        self.transformer = Transformer(L, d, h, F, T, V, self.variant)
        self.lm_head = nn.Linear(d, V, bias=False)
        if self.variant["tie"] == "1":
            self.lm_head.weight = self.transformer.wte.weight      # tied

    def forward(self, idx, return_acts=False):
        """idx [B, T'] (T' <= T) -> logits [B, T', V] (and post-activation values per layer)."""
        tr = self.transformer
        x = tr.wte(idx)
        if tr.wpe is not None:
            x = x + tr.wpe(torch.arange(idx.shape[1], device=idx.device))
        acts = []
        for block in tr.h:
            x, a = block(x)
            acts.append(a)
        logits = self.lm_head(tr.ln_f(x))
        return (logits, acts) if return_acts else logits


def hf_config(size, variant=None):
    """The Hugging Face GPT2Config (as a dict) of a reluscope size."""
    variant = dict(DEFAULT_VARIANT, **(variant or {}))
    return {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
            "vocab_size": size["V"], "n_positions": size["T"], "n_embd": size["d"],
            "n_layer": size["L"], "n_head": size["h"], "n_inner": size["F"],
            "activation_function": variant["act"], "layer_norm_epsilon": LN_EPS,
            "tie_word_embeddings": variant["tie"] == "1", "scale_attn_weights": True,
            "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
            "reluscope_size": size, "reluscope_variant": variant}


def load_exported(folder, dtype=torch.float64):
    """The model of an export folder (state_dict.pt, config.json), in eval mode."""
    with open(os.path.join(folder, "config.json")) as f:
        conf = json.load(f)
    size = conf["reluscope_size"]
    model = ReluGPT(**{k: size[k] for k in ("L", "d", "h", "F", "T", "V")},
                    variant=conf.get("reluscope_variant"))
    model.load_state_dict(torch.load(os.path.join(folder, "state_dict.pt")))
    return model.to(dtype).eval()


def read_shard(path):
    """Tokens of an llm.c-layout shard (docs/data.md): 256 int32 header, uint16 tokens."""
    header = np.fromfile(path, dtype="<i4", count=256)
    if header[0] != 20240520 or header[1] != 1:
        raise ValueError(f"{path}: not a token shard (magic/version)")
    return np.fromfile(path, dtype="<u2", offset=1024, count=int(header[2]))


@torch.no_grad()
def evaluate_shard(model, path, batch=8):
    """Loss and per-layer usage of a shard, as `reluscope eval --json`: windows of
    T+1 tokens at stride T; token/seq/batch usage = units with activation > 0."""
    T, F, L = model.size["T"], model.size["F"], model.size["L"]
    tokens = read_shard(path).astype(np.int64)
    n = (len(tokens) - 1) // T
    windows = np.stack([tokens[w * T: w * T + T + 1] for w in range(n)])
    loss_sum, tok_use, seq_use = 0.0, np.zeros(L), np.zeros(L)
    seen = [torch.zeros(F, dtype=torch.bool) for _ in range(L)]
    for b in range(0, n, batch):
        w = torch.from_numpy(windows[b:b + batch])
        logits, acts = model(w[:, :-1], return_acts=True)
        loss_sum += float(fn.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(),
                                           w[:, 1:].reshape(-1), reduction="sum"))
        for l, a in enumerate(acts):
            on = a > 0                                   # [b, T, F]
            tok_use[l] += float(on.sum(-1).double().sum()) / F
            seq_use[l] += float(on.any(1).sum(-1).double().sum()) / F
            seen[l] |= on.any(1).any(0)
    return {"loss": loss_sum / (n * T), "tokens": n * T,
            "layers": [{"token_use_mean": tok_use[l] / (n * T), "seq_use_mean": seq_use[l] / n,
                        "batch_use": float(seen[l].sum()) / F} for l in range(L)]}
