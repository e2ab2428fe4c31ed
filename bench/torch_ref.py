#!/usr/bin/python3
"""torch_ref.py — the reluscope model and training step in PyTorch, for the
`make bench` comparison (SPEC §6: same model, batch, BLAS, thread count and
per-step statistics).

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

usage: torch_ref.py L d h F T V B [--reps N] [--warmup N] [--shard FILE]
Output: '#' lines, then one line "RESULT key=value ...".
"""
import argparse
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


class Block(nn.Module):
    def __init__(self, d, h, F, L):
        super().__init__()
        self.h = h
        self.ln1 = nn.LayerNorm(d, eps=1e-5)
        self.qkv = nn.Linear(d, 3 * d)
        self.attproj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d, eps=1e-5)
        self.fc = nn.Linear(d, F)
        self.fcproj = nn.Linear(F, d)
        for lin in (self.qkv, self.fc):
            nn.init.normal_(lin.weight, 0.0, 0.02)
        for lin in (self.attproj, self.fcproj):
            nn.init.normal_(lin.weight, 0.0, 0.02 / math.sqrt(2 * L))
        for lin in (self.qkv, self.attproj, self.fc, self.fcproj):
            nn.init.zeros_(lin.bias)

    def forward(self, x, mask):
        B, T, C = x.shape
        hs = C // self.h
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q = q.view(B, T, self.h, hs).transpose(1, 2)
        k = k.view(B, T, self.h, hs).transpose(1, 2)
        v = v.view(B, T, self.h, hs).transpose(1, 2)
        sdpa = getattr(Fn, "scaled_dot_product_attention", None)
        if sdpa is not None:
            y = sdpa(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
            att = att.masked_fill(mask[:T, :T], float("-inf"))
            y = torch.softmax(att, dim=-1) @ v
        y = y.transpose(1, 2).reshape(B, T, C)
        x = x + self.attproj(y)
        a = torch.relu(self.fc(self.ln2(x)))
        return x + self.fcproj(a), a


class GPT(nn.Module):
    def __init__(self, L, d, h, F, T, V):
        super().__init__()
        self.wte = nn.Parameter(torch.randn(V, d) * 0.02)
        self.wpe = nn.Parameter(torch.randn(T, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, h, F, L) for _ in range(L))
        self.lnf = nn.LayerNorm(d, eps=1e-5)
        self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), 1))

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte[idx] + self.wpe[:T]
        acts = []
        for blk in self.blocks:
            x, a = blk(x, self.mask)
            acts.append(a)
        logits = self.lnf(x) @ self.wte.t()
        loss = Fn.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return loss, acts


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for k in ("L", "d", "h", "F", "T", "V", "B"):
        ap.add_argument(k, type=int)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--shard", help="llm.c token shard: the batch is its first B windows")
    ap.add_argument("--dead-window", type=int, default=100)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    L, d, h, F, T, V, B = a.L, a.d, a.h, a.F, a.T, a.V, a.B
    model = GPT(L, d, h, F, T, V)
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
