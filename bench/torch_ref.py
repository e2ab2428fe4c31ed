#!/usr/bin/python3
"""torch_ref.py — the reluscope model and training step in PyTorch, for the
`make bench` comparison (SPEC §6: same model, batch, BLAS, thread count and
per-step statistics), and the reference that `tests/t_torch_ref.sh` checks the
C program's every architecture variant against (--compare).

The model is SPEC §2 exactly: tied token embedding, learned positions, pre-LN
blocks with a fused qkv projection (+bias), causal multi-head attention (an
explicit masked softmax: PyTorch 1.13 has no scaled_dot_product_attention;
it is used when present), output projection, ReLU MLP, final LayerNorm,
logits = lnf(x) . wte^T, mean cross-entropy; init N(0, 0.02), the residual
projections N(0, 0.02/sqrt(2L)), biases 0. AdamW with decoupled weight decay
on the 2-D weights only, global-norm clipping at 1.0, float32, one thread.

The per-step statistics are reluscope's (SPEC §3), vectorized, from the
post-ReLU activations of every layer: per-unit fire counts, the per-token
active-count histogram, the per-sequence distinct-active histogram, and from
them the token/sequence usage means and exact quantiles, batch usage, and the
off/dead state (last firing step, dead_frac, turned_off, revived).

Single-thread sgemm FLOP/s through torch.mm (the same OpenBLAS) on the
model's fc shape is measured between the steps, as bench_model does, so the
two programs' ratios to their own sgemm can be compared under drifting load.

The architecture variants of docs/model.md ("Variants"), with --variant
"pos=rope tie=0 mlp_bias=0 act=relu2" (any subset): pos=none drops the position
embedding; pos=rope turns q and k by the rotary embedding (half-split pairs
(i, i + hs/2), theta_i = 10000^(-2i/hs)); tie=0 adds an own head lmhead [d][V];
mlp_bias=0 drops both MLP biases; act=relu2 squares the ReLU. A unit is active
iff its rectified pre-activation max(x, 0) is > 0, i.e. x > 0 (= g(x) > 0 in
the C program, which never rounds g to 0 for x > 0).

usage: torch_ref.py L d h F T V B [--reps N] [--warmup N] [--shard FILE] [--variant V]
Output: '#' lines, then one line "RESULT key=value ...".
   or: torch_ref.py --compare CHECKPOINT SHARD
Loads a reluscope checkpoint (docs/checkpoint.md), cuts SHARD into windows of
T+1 tokens at stride T as `reluscope eval` does, and prints the same JSON as
`reluscope eval --json`: loss, tokens, and per layer token_use_mean,
seq_use_mean and batch_use.
"""
import json
import struct
import zlib
import argparse
import ctypes
import math
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as Fn  # noqa: E402

QLEVELS_E4 = [0, 100, 500, 1000, 2500, 5000, 7500, 9000, 9500, 9900, 10000]


VARIANT_KEYS = {"pos": ("learned", "none", "rope"), "tie": ("1", "0"),
                "mlp_bias": ("1", "0"), "act": ("relu", "relu2")}   # src/variant.c


def parse_variant(text):
    """"pos=rope act=relu2" -> {"pos": "rope", "tie": "1", ...} (defaults filled)."""
    v = {k: vals[0] for k, vals in VARIANT_KEYS.items()}
    for tok in (text or "").split():
        k, _, val = tok.partition("=")
        if k not in VARIANT_KEYS or val not in VARIANT_KEYS[k]:
            sys.exit("torch_ref.py: bad variant token '%s' (keys: %s)" % (tok, VARIANT_KEYS))
        v[k] = val
    return v


def rope_tables(T, hs):
    half = hs // 2
    i = torch.arange(half, dtype=torch.float64)
    angle = torch.arange(T, dtype=torch.float64)[:, None] * torch.pow(10000.0, -2.0 * i / hs)
    return torch.cos(angle).float(), torch.sin(angle).float()   # [T][hs/2]


def rope(x, cos, sin):
    """x [B, h, T, hs]: channel pairs (i, i + hs/2) turned by t * theta_i."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)


class Block(nn.Module):
    def __init__(self, d, h, F, L, variant):
        super().__init__()
        self.h = h
        self.variant = variant
        bias = variant["mlp_bias"] == "1"
        self.ln1 = nn.LayerNorm(d, eps=1e-5)
        self.qkv = nn.Linear(d, 3 * d)
        self.attproj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d, eps=1e-5)
        self.fc = nn.Linear(d, F, bias=bias)
        self.fcproj = nn.Linear(F, d, bias=bias)
        for lin in (self.qkv, self.fc):
            nn.init.normal_(lin.weight, 0.0, 0.02)
        for lin in (self.attproj, self.fcproj):
            nn.init.normal_(lin.weight, 0.0, 0.02 / math.sqrt(2 * L))
        for lin in (self.qkv, self.attproj, self.fc, self.fcproj):
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)

    def forward(self, x, mask, rot):
        B, T, C = x.shape
        hs = C // self.h
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q = q.view(B, T, self.h, hs).transpose(1, 2)
        k = k.view(B, T, self.h, hs).transpose(1, 2)
        v = v.view(B, T, self.h, hs).transpose(1, 2)
        if rot is not None:
            q, k = rope(q, *rot), rope(k, *rot)
        sdpa = getattr(Fn, "scaled_dot_product_attention", None)
        if sdpa is not None:
            y = sdpa(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
            att = att.masked_fill(mask[:T, :T], float("-inf"))
            y = torch.softmax(att, dim=-1) @ v
        y = y.transpose(1, 2).reshape(B, T, C)
        x = x + self.attproj(y)
        r = torch.relu(self.fc(self.ln2(x)))       # max(x, 0): its sign is "active"
        a = r * r if self.variant["act"] == "relu2" else r
        return x + self.fcproj(a), r


class GPT(nn.Module):
    def __init__(self, L, d, h, F, T, V, variant=None):
        super().__init__()
        self.variant = variant = variant or parse_variant("")
        self.wte = nn.Parameter(torch.randn(V, d) * 0.02)
        if variant["pos"] == "learned":
            self.wpe = nn.Parameter(torch.randn(T, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, h, F, L, variant) for _ in range(L))
        self.lnf = nn.LayerNorm(d, eps=1e-5)
        if variant["tie"] == "0":
            self.lmhead = nn.Parameter(torch.randn(d, V) * 0.02)
        self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), 1))
        self.rot = rope_tables(T, d // h) if variant["pos"] == "rope" else None

    def forward(self, idx, targets, reduction="mean"):
        B, T = idx.shape
        x = self.wte[idx] + self.wpe[:T] if self.variant["pos"] == "learned" else self.wte[idx]
        rot = None if self.rot is None else (self.rot[0][:T], self.rot[1][:T])
        acts = []
        for blk in self.blocks:
            x, a = blk(x, self.mask, rot)
            acts.append(a)
        head = self.lmhead if self.variant["tie"] == "0" else self.wte.t()
        logits = self.lnf(x) @ head
        loss = Fn.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1),
                                reduction=reduction)
        return loss, acts


def read_checkpoint(path):
    """The parameters, size and variant of a reluscope checkpoint (docs/checkpoint.md)."""
    b = open(path, "rb").read()
    version = struct.unpack_from("<I", b, 8)[0] if len(b) > 12 else 0
    if b[:8] != b"RSCKPT01" or version not in (1, 2, 3, 4):
        sys.exit("torch_ref.py: %s: not a reluscope checkpoint of format 1-4" % path)
    if zlib.crc32(b[:-4]) != struct.unpack_from("<I", b, len(b) - 4)[0]:
        sys.exit("torch_ref.py: %s: CRC mismatch" % path)
    size = struct.unpack_from("<6i", b, 16)
    N, = struct.unpack_from("<I", b, 132)
    P, C = struct.unpack_from("<QQ", b, 144)
    H = {4: 208, 3: 192}.get(version, 160)        # header bytes (docs/checkpoint.md)
    codes = struct.unpack_from("<4I", b, 192) if version >= 4 else (0, 0, 0, 0)
    variant = {k: VARIANT_KEYS[k][c] for k, c in zip(VARIANT_KEYS, codes)}
    A = (H + C + 7) // 8 * 8
    params = {}
    for i in range(N):
        e = A + 64 * i
        name = b[e:e + 16].rstrip(b"\0").decode()
        ndim, = struct.unpack_from("<I", b, e + 16)
        shape = struct.unpack_from("<3Q", b, e + 24)[:ndim]
        count, off = struct.unpack_from("<QQ", b, e + 48)
        arr = np.frombuffer(b, "<f4", count, A + 64 * N + 4 * off).reshape(shape)
        params[name] = torch.from_numpy(arr.copy())
    return size, variant, params


@torch.no_grad()
def load_into(model, params):
    """C tensors ([in][out], stacked per layer) -> the torch modules ([out][in])."""
    model.wte.copy_(params["wte"])
    if "wpe" in params:
        model.wpe.copy_(params["wpe"])
    if "lmhead" in params:
        model.lmhead.copy_(params["lmhead"])
    model.lnf.weight.copy_(params["lnfw"])
    model.lnf.bias.copy_(params["lnfb"])
    for l, blk in enumerate(model.blocks):
        for mod, w, bname in ((blk.ln1, "ln1w", "ln1b"), (blk.ln2, "ln2w", "ln2b")):
            mod.weight.copy_(params[w][l])
            mod.bias.copy_(params[bname][l])
        for lin, w, bname in ((blk.qkv, "qkvw", "qkvb"), (blk.attproj, "attprojw", "attprojb"),
                              (blk.fc, "fcw", "fcb"), (blk.fcproj, "fcprojw", "fcprojb")):
            lin.weight.copy_(params[w][l].t())
            if lin.bias is not None:
                lin.bias.copy_(params[bname][l])


def read_windows(shard, T):
    """Consecutive windows of T+1 tokens at stride T (as `reluscope eval`)."""
    tok = np.fromfile(shard, dtype=np.uint16, offset=1024).astype(np.int64)
    n = (len(tok) - 1) // T
    return torch.stack([torch.from_numpy(tok[i * T:i * T + T + 1]) for i in range(n)])


@torch.no_grad()
def compare(ckpt, shard):
    (L, d, h, F, T, V), variant, params = read_checkpoint(ckpt)
    model = GPT(L, d, h, F, T, V, variant)
    load_into(model, params)
    batch = read_windows(shard, T)
    losses, acts = model(batch[:, :T], batch[:, 1:], reduction="none")
    layers = []
    for a in acts:
        on = a > 0                                              # [B, T, F]
        layers.append({"token_use_mean": on.sum(-1).double().mean().item() / F,
                       "seq_use_mean": on.any(1).sum(-1).double().mean().item() / F,
                       "batch_use": on.any(1).any(0).sum().item() / F})
    print(json.dumps({"loss": losses.double().mean().item(), "tokens": losses.numel(),
                      "layers": layers, "variant": variant}))


class Stats:
    """SPEC §3 per-step statistics of every layer, vectorized over layers,
    tokens and units (no Python loop over tokens or units)."""

    def __init__(self, L, F, window):
        self.F, self.W = F, window
        self.last_fire = torch.full((L, F), -1, dtype=torch.int64)
        self.q = torch.tensor(QLEVELS_E4, dtype=torch.int64)

    def quantiles(self, hist, total):
        # x(max(1, ceil(q*N))) of the sorted items, read off the histogram
        rank = torch.clamp((self.q * total + 9999) // 10000, min=1)          # [Q]
        cum = torch.cumsum(hist, dim=-1)                                      # [L, F+1]
        idx = torch.searchsorted(cum, rank.expand(cum.shape[0], -1).contiguous())
        return idx.to(torch.float64) / self.F

    @torch.no_grad()
    def step(self, acts, step):
        # post-ReLU values are >= 0, so sign(a) is the 0/1 "active" mask
        # (a > 0), as float32: sums of it are exact integer counts below 2^24
        # tokens, and float reductions are several times faster than summing
        # a bool tensor (which PyTorch widens to int64 first)
        L = len(acts)
        B, T, F = acts[0].shape
        fire, per_token, per_seq = [], [], []
        for a in acts:                                        # loop over layers only
            on = torch.sign(a)                                # [B, T, F]
            fire.append(on.sum(dim=(0, 1)))
            per_token.append(on.sum(dim=-1).view(-1))
            per_seq.append(on.amax(dim=1).sum(dim=-1))
        fire = torch.stack(fire).to(torch.int64)              # [L, F]
        per_token = torch.stack(per_token).to(torch.int64)    # [L, B*T]
        per_seq = torch.stack(per_seq).to(torch.int64)        # [L, B]
        off = torch.arange(L).unsqueeze(1) * (F + 1)
        token_hist = torch.bincount((per_token + off).view(-1), minlength=L * (F + 1)).view(L, F + 1)
        seq_hist = torch.bincount((per_seq + off).view(-1), minlength=L * (F + 1)).view(L, F + 1)
        out = {
            "fire_count": fire,
            "token_use_mean": per_token.to(torch.float64).mean(dim=1) / F,
            "seq_use_mean": per_seq.to(torch.float64).mean(dim=1) / F,
            "batch_use": (fire > 0).sum(dim=1).to(torch.float64) / F,
            "token_use_q": self.quantiles(token_hist, B * T),
            "seq_use_q": self.quantiles(seq_hist, B),
        }
        was_off = (step - 1 - self.last_fire >= self.W) if step > 0 else torch.zeros_like(fire, dtype=torch.bool)
        self.last_fire = torch.where(fire > 0, torch.full_like(self.last_fire, step), self.last_fire)
        is_off = step - self.last_fire >= self.W
        out["dead_frac"] = is_off.sum(dim=1).to(torch.float64) / F
        out["turned_off"] = (is_off & ~was_off).sum(dim=1)
        out["revived"] = (was_off & (fire > 0)).sum(dim=1)
        return out


def sgemm_flops(a, b, c):
    best = 0.0
    for _ in range(2):
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)   # into a kept buffer: no allocation, no page faults
        best = max(best, 2.0 * a.shape[0] * a.shape[1] * b.shape[1] / (time.perf_counter() - t0))
    return best


def model_flops_per_token(L, d, F, T, V):
    per_layer = 2.0 * (3 * d * d + d * d + 2 * d * F) + 2.0 * 2.0 * (T / 2.0) * d
    return 3.0 * (L * per_layer + 2.0 * d * V)


def keep_freed_memory():
    """Keep freed tensors' memory in the process (glibc: no mmap, no trim).
    PyTorch's CPU allocator hands every large tensor back to glibc, which by
    default returns it to the system (munmap) and takes it again the next step:
    each step then touches fresh pages, and on this benchmark's VM, where a page
    fault is expensive, that made the W step 9.8 s instead of 1.9 s (relu,
    copies and softmaxes at under 1 GB/s). reluscope keeps its buffers from
    step to step, so the comparison is fair only with the same here."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    libc.mallopt(M_MMAP_MAX, 0)
    libc.mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--compare":
        torch.set_num_threads(1)
        compare(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for k in ("L", "d", "h", "F", "T", "V", "B"):
        ap.add_argument(k, type=int)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--shard", help="llm.c token shard: the batch is its first B windows")
    ap.add_argument("--dead-window", type=int, default=100)
    ap.add_argument("--variant", default="", help='e.g. "pos=rope act=relu2" (docs/model.md)')
    a = ap.parse_args()
    keep_freed_memory()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    L, d, h, F, T, V, B = a.L, a.d, a.h, a.F, a.T, a.V, a.B
    model = GPT(L, d, h, F, T, V, parse_variant(a.variant))
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    if a.shard:
        toks = np.fromfile(a.shard, dtype=np.uint16, offset=1024, count=B * (T + 1))
        if toks.size < B * (T + 1):
            sys.exit("torch_ref.py: %s holds fewer than %d tokens" % (a.shard, B * (T + 1)))
        batch = torch.from_numpy(toks.astype(np.int64)).view(B, T + 1) % V
    else:
        batch = torch.randint(0, V, (B, T + 1), generator=torch.Generator().manual_seed(3))
    idx, tgt = batch[:, :T].contiguous(), batch[:, 1:].contiguous()
    stats = Stats(L, F, a.dead_window)
    params = list(model.parameters())
    ga = torch.rand(B * T, d)
    gb = torch.rand(d, F)
    gc = torch.empty(B * T, F)
    t_step, t_fwd, t_bwd, t_opt, t_stat, f_fc = [], [], [], [], [], []
    t_cpu = []   # CPU time of the step: what a shared, busy machine does not inflate
    for r in range(a.warmup + a.reps):
        f = sgemm_flops(ga, gb, gc)
        c0 = time.process_time()
        t0 = time.perf_counter()
        loss, acts = model(idx, tgt)
        t1 = time.perf_counter()
        s = stats.step(acts, r)
        s["loss"] = loss.item()
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        s["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, 1.0))
        opt.step()
        t4 = time.perf_counter()
        c4 = time.process_time()
        del acts, loss
        if r < a.warmup:
            continue
        t_step.append(t4 - t0); t_fwd.append(t1 - t0); t_stat.append(t2 - t1)
        t_bwd.append(t3 - t2); t_opt.append(t4 - t3); f_fc.append(f); t_cpu.append(c4 - c0)
    med = statistics.median
    step = med(t_step)
    tokens = B * T
    mf = model_flops_per_token(L, d, F, T, V) * tokens / step
    print("# torch %s, %d thread(s), attention: %s; median of %d steps after %d warm-up"
          % (torch.__version__, torch.get_num_threads(),
             "sdpa" if hasattr(Fn, "scaled_dot_product_attention") else "masked softmax",
             a.reps, a.warmup))
    print("# step %.1f ms (fwd %.1f, stats %.1f, bwd %.1f, clip+AdamW %.1f) -> %.0f tokens/s, "
          "model %.2f GFLOP/s; torch.mm %dx%dx%d %.2f GFLOP/s"
          % (1e3 * step, 1e3 * med(t_fwd), 1e3 * med(t_stat), 1e3 * med(t_bwd), 1e3 * med(t_opt),
             tokens / step, mf / 1e9, B * T, F, d, med(f_fc) / 1e9))
    print("RESULT step_s=%.6f tok_s=%.1f fwd_s=%.6f stats_s=%.6f bwd_s=%.6f opt_s=%.6f "
          "sgemm_fc=%.6e model_flops=%.6e cpu_step_s=%.6f"
          % (step, tokens / step, med(t_fwd), med(t_stat), med(t_bwd), med(t_opt), med(f_fc), mf,
             med(t_cpu)))


if __name__ == "__main__":
    main()
