#!/usr/bin/python3
"""perf_breakdown.py — where a training step's time goes, from a perf profile
with call graphs (bench/profile.sh records one of bench_model's steady-state
steps with `perf record --call-graph dwarf`).

Every sample is charged to one part of the step by its call chain:
GEMMs by the layer that called cblas_sgemm (qkv, attention output projection,
fc, fc projection, tied logits, the attention score/value products), and the
rest by the reluscope function it ran in (attention softmax, LayerNorm,
cross-entropy, bias+ReLU+counting, AdamW, ...). The caller of matmul_forward
and matmul_backward is block_forward/block_backward inlined into
model_forward/model_backward; the call site's source line (addr2line) tells
which weight it multiplies.

usage: perf_breakdown.py PERF_DATA BINARY [SRC_DIR [HZ STEPS L d h F T V B]]
With the sampling rate, the number of profiled steps and the model shape, it
also prints each part's milliseconds per step (cpu-clock samples / HZ) and
each GEMM group's achieved GFLOP/s (model FLOPs of that group: attention
counted over the causal half, as model_flops_per_token does).
"""
import collections
import os
import re
import subprocess
import sys

LINEAR = (("qkvw", "qkv projection"), ("attprojw", "attention out projection"),
          ("fcprojw", "MLP proj (F->d)"), ("fcw", "MLP fc (d->F)"))
OWN = [  # (function, part) for samples not in a GEMM
    # attention.c: its softmaxes, then its own products (combine16) and packing
    ("causal_softmax_backward", "attention softmax (bwd)"),
    ("causal_softmax", "attention softmax (fwd)"),
    ("head_forward", "attention products (fwd)"), ("attention_forward", "attention products (fwd)"),
    ("head_backward", "attention products (bwd)"),
    ("attention_backward", "attention products (bwd)"),
    ("layernorm_forward", "LayerNorm"), ("layernorm_backward", "LayerNorm"),
    ("crossentropy_forward", "cross-entropy (softmax over V)"),
    ("crossentropy_backward", "cross-entropy (softmax over V)"),
    ("relu_inplace", "bias+ReLU+counting (fused)"), ("relu_copy", "bias+ReLU+counting (fused)"),
    ("relu_count_forward", "bias+ReLU+counting (fused)"),
    ("relu_backward", "ReLU backward + fc bias grad"),
    ("matmul_forward", "bias add (linear fwd)"), ("matmul_forward_seq", "bias add (linear fwd)"),
    ("matmul_backward", "bias grad (linear bwd)"),
    ("optimizer_step", "grad norm, clip, AdamW"), ("adamw_tensor", "grad norm, clip, AdamW"),
    ("grad_norm", "grad norm, clip, AdamW"), ("clip_factor", "grad norm, clip, AdamW"),
    ("residual_forward", "residual add, embedding"), ("encoder_forward", "residual add, embedding"),
    ("encoder_backward", "residual add, embedding"),
    ("model_zero_grad", "zeroing buffers (memset)"),
    ("usage_summarize", "metric summaries"), ("death_tracker_step", "metric summaries"),
]


class Lines:
    """call-site address in the binary -> which weight the call multiplies"""

    def __init__(self, binary, src):
        self.binary, self.src, self.cache, self.files = binary, src, {}, {}

    def text(self, path, line):
        if path not in self.files:
            p = path if os.path.exists(path) else os.path.join(self.src, os.path.basename(path))
            try:
                with open(p) as f:
                    self.files[path] = f.read().split("\n")
            except OSError:
                self.files[path] = []
        lines = self.files[path]
        return " ".join(lines[max(0, line - 1):line + 2])

    def weight(self, addr):
        if addr not in self.cache:
            out = subprocess.run(["addr2line", "-e", self.binary, "-i", hex(addr - 1)],
                                 capture_output=True, text=True).stdout.split("\n")
            found = "linear layer (unidentified)"
            m = re.match(r"(.*):(\d+)", out[0]) if out and out[0] else None
            if m:
                t = self.text(m.group(1), int(m.group(2)))
                for key, name in LINEAR:
                    if key in t:
                        found = name
                        break
            self.cache[addr] = found
        return self.cache[addr]


def samples(data):
    """yield each sample's frames, leaf first, as (address, symbol, dso)"""
    p = subprocess.Popen(["perf", "script", "-i", data, "--no-inline", "-F", "ip,sym,dso"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    frames = []
    for line in p.stdout:
        line = line.strip()
        if not line:
            if frames:
                yield frames
            frames = []
            continue
        m = re.match(r"([0-9a-f]+)\s+(\S+)\s+\((.*)\)", line)
        if m:
            frames.append((int(m.group(1), 16), m.group(2).split("+")[0], m.group(3)))
    if frames:
        yield frames
    p.wait()


def classify(frames, lines, exe):
    syms = [f[1] for f in frames]
    gemm = any("sgemm" in s or s.startswith("cblas_") for s in syms)
    if frames and frames[0][2].startswith("[kernel"):
        return "kernel (page faults, interrupts)"
    if gemm:
        for i, s in enumerate(syms):
            if s in ("attention_forward", "attention_backward"):
                return "GEMM attention QK^T, PV (%s)" % ("fwd" if s == "attention_forward" else "bwd")
            if s == "matmul_forward_seq_t":   # only the tied logits multiply by a transpose
                return "GEMM logits (tied wte)"
            # matmul_forward is inlined into matmul_forward_seq (one sgemm a sequence)
            if s in ("matmul_forward", "matmul_backward", "matmul_forward_seq"):
                caller = frames[i + 1] if i + 1 < len(frames) else None
                w = lines.weight(caller[0]) if caller and os.path.basename(caller[2]) == exe else "linear layer (unidentified)"
                return "GEMM " + w
            if s in ("model_forward", "model_backward"):
                return "GEMM logits (tied wte)"
            if s == "gemm_flops":
                return "reference sgemm (not the step)"
        return "GEMM (other)"
    for s in syms:
        for fn, part in OWN:
            if s == fn:
                return part
    leaf = syms[0] if syms else "?"
    if "expf" in leaf or "exp" == leaf:
        return "expf (caller unknown)"
    if "memset" in leaf:
        return "zeroing buffers (memset)"
    return "other: " + leaf


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    data, binary = sys.argv[1], sys.argv[2]
    src = sys.argv[3] if len(sys.argv) > 3 else "src"
    lines, exe = Lines(binary, src), os.path.basename(binary)
    counts, total = collections.Counter(), 0
    for fr in samples(data):
        # expf and memset samples are charged to the reluscope function calling them
        counts[classify(fr, lines, exe)] += 1
        total += 1
    if not total:
        sys.exit("perf_breakdown.py: no samples in %s" % data)
    gemm = sum(v for k, v in counts.items() if k.startswith("GEMM"))
    timed = len(sys.argv) >= 13
    flops = {}
    if timed:
        hz, steps = float(sys.argv[4]), int(sys.argv[5])
        L, d, h, F, T, V, B = (int(x) for x in sys.argv[6:13])
        N = B * T
        att = 2.0 * 2.0 * (T / 2.0) * d * N * L      # forward QK^T + PV, causal half
        flops = {"GEMM qkv projection": 3 * 2.0 * N * d * 3 * d * L,
                 "GEMM attention out projection": 3 * 2.0 * N * d * d * L,
                 "GEMM MLP fc (d->F)": 3 * 2.0 * N * d * F * L,
                 "GEMM MLP proj (F->d)": 3 * 2.0 * N * F * d * L,
                 "GEMM logits (tied wte)": 3 * 2.0 * N * d * V,
                 "GEMM attention QK^T, PV (fwd)": att,
                 "GEMM attention QK^T, PV (bwd)": 2 * att,
                 "attention products (fwd)": att,
                 "attention products (bwd)": 2 * att}
        ms = lambda v: 1e3 * v / hz / steps  # noqa: E731
        print("%-44s %7s %9s %8s" % ("part of the step (%d samples)" % total, "share",
                                     "ms/step", "GFLOP/s"))
    else:
        print("%-44s %7s" % ("part of the step (%d samples)" % total, "share"))
    for k, v in counts.most_common():
        if timed:
            gf = ("%8.1f" % (flops[k] / (ms(v) / 1e3) / 1e9)) if k in flops else ""
            print("%-44s %6.1f%% %9.1f %s" % (k, 100.0 * v / total, ms(v), gf))
        else:
            print("%-44s %6.1f%%" % (k, 100.0 * v / total))
    if timed:
        allf = sum(flops.values())
        print("%-44s %6.1f%% %9.1f %8.1f" % ("= all GEMMs (cblas_sgemm, OpenBLAS)",
                                            100.0 * gemm / total, ms(gemm), allf / (ms(gemm) / 1e3) / 1e9))
        print("%-44s %7s %9.1f %8.1f" % ("= the whole step (CPU time)", "", ms(total),
                                         allf / (ms(total) / 1e3) / 1e9))
    else:
        print("%-44s %6.1f%%" % ("= all GEMMs (cblas_sgemm, OpenBLAS)", 100.0 * gemm / total))

if __name__ == "__main__":
    main()
