#!/usr/bin/env python3
"""amdahl.py — how fast the whole W training step can get with the sparse MLP
path, from the FLOP counts and from the measured parts of one `make bench`
run (docs/performance.md, "Sparse MLP kernels: the Amdahl bound").

usage: bench/amdahl.py DIR [MLPOUT]
  DIR: a bench work folder or build/bench/last (W.mlp.out, W.step.out,
  W.wtorch.out); MLPOUT: another bench_mlp output at the trained state's own
  densities (default: interpolate DIR's density sweep).

The step's parts: T_rest = dense step - L x dense MLP layer (bench_mlp's dense
forward + backward of one layer, counting included) is what the MLP path does
not touch (attention, logits, LayerNorms, AdamW, summaries). With layer 0 on
the dense path (it stays near 40-48% density) and X.W1 dense by design:
  bound      T_rest + T_mlp_dense + (L-1) x (T_XW1 + T_relu+lists)
             (the sparse projection and backward of layers 1.. for free)
  estimate   T_rest + T_mlp_dense + sum_l T_mlp_sparse(rho_l)
             (and with layer 0 sparse when auto takes it, rho_0 <= 0.40)
  all sparse T_rest + L x (T_XW1 + T_relu+lists)   (layer 0 too, for free)
"""
import math
import re
import sys


def results(path):
    """RESULT lines of a file as a list of dicts (floats)."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("RESULT "):
                    d = {}
                    for kv in line.split()[1:]:
                        k, _, v = kv.partition("=")
                        try:
                            d[k] = float(v)
                        except ValueError:
                            pass
                    out.append(d)
    except OSError:
        pass
    return out


def mlp_parts(path):
    """density -> {path: {part: ms}} from bench_mlp's '#' lines."""
    table, dens = {}, None
    with open(path) as f:
        for line in f:
            m = re.match(r"# density ([0-9.]+)", line)
            if m:
                dens = float(m.group(1))
                table[dens] = {}
                continue
            m = re.match(r"#\s+(dense|sparse|auto)\s+parts \(ms\):(.*)", line)
            if m and dens is not None:
                toks = m.group(2).split()
                table[dens][m.group(1)] = {toks[i]: float(toks[i + 1])
                                          for i in range(0, len(toks) - 1, 2)}
    return table


def interp(xs, ys, x):
    """linear in log density between the two nearest measured densities"""
    pts = sorted(zip(xs, ys))
    if x <= pts[0][0]:
        return pts[0][1]
    if x >= pts[-1][0]:
        return pts[-1][1]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= x <= x1:
            t = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return y0 + t * (y1 - y0)
    return pts[-1][1]


def flops_bound(L=6, d=64, F=2048, T=64, V=4096, rho0=1.0, rho=0.05):
    """fraction of the dense step's FLOPs left when layers 1.. run their five
    sparse products at density rho (layer 0 at rho0: 1 = dense path)"""
    five = 3 * 2 * 2 * d * F - 2 * d * F          # fwd+bwd of the MLP minus X.W1
    per_layer = 3 * (2 * 4 * d * d + 4 * (T / 2) * d + 3 * 2 * 2 * d * F // 3)
    total = L * per_layer + 3 * 2 * d * V
    left = total - (L - 1) * five * (1 - rho) - five * (1 - rho0)
    return left / total


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    parts = mlp_parts(d + "/W.mlp.out")
    step = results(d + "/W.step.out")[-1]
    torch = results(d + "/W.wtorch.out")
    L = 6
    dens = [step.get("density%d" % l, -1) for l in range(L)]
    ds = sorted(parts)
    t_dense_layer = sorted(sum(parts[x]["dense"].values()) for x in ds)[len(ds) // 2]
    t_x = sorted(parts[x]["sparse"]["X.W1"] for x in ds)[len(ds) // 2]
    t_r = min(parts[x]["sparse"]["ReLU+count(+lists)"] for x in ds)
    other = parts
    if len(sys.argv) > 2:
        other = mlp_parts(sys.argv[2])
    xs = sorted(other)
    sp = [sum(other[x]["sparse"].values()) for x in xs]
    T_d = 1e3 * step["dense_s"]
    T_rest = T_d - L * t_dense_layer
    bound = T_rest + t_dense_layer + (L - 1) * (t_x + t_r)
    est = T_rest + t_dense_layer + sum(interp(xs, sp, r) for r in dens[1:] if r > 0)
    # every layer on the path auto takes (layer 0 sparse when at most 0.40)
    est_auto = T_rest + sum(interp(xs, sp, r) if 0 <= r <= 0.40 else t_dense_layer
                            for r in dens)
    allsp = T_rest + L * (t_x + t_r)
    print("dense step %.1f ms; dense MLP layer %.1f ms (X.W1 %.1f, ReLU+lists %.1f in the "
          "sparse path); T_rest %.1f ms (%.0f%%)" % (T_d, t_dense_layer, t_x, t_r, T_rest,
                                                   100 * T_rest / T_d))
    print("densities " + " ".join("%.3f" % r for r in dens))
    for name, t in (("estimate at these densities, layer 0 dense", est),
                    ("estimate, each layer on auto's path", est_auto),
                    ("bound, layer 0 dense, sparse work free", bound),
                    ("bound, every layer sparse and free", allsp)):
        print("%-45s %7.1f ms = %.2fx dense" % (name, t, T_d / t))
    for k in ("sparse", "auto"):
        if k + "_s" in step:
            print("measured %-6s %7.1f ms = %.2fx dense" % (k, 1e3 * step[k + "_s"],
                                                          T_d / (1e3 * step[k + "_s"])))
    if torch and "cpu_step_s" in torch[-1]:
        tt = 1e3 * torch[-1]["cpu_step_s"]
        print("PyTorch %.0f ms CPU: 5x needs %.0f ms; bound (layer 0 dense) gives %.2fx"
              % (tt, tt / 5, tt / bound))
    r0 = dens[0] if dens[0] > 0 else 0.45
    for rho in (0.05, 0.02, 0.0):
        print("FLOPs left, layers 1-5 at %.0f%%: layer 0 dense %.3f (%.2fx), layer 0 sparse "
              "at %.0f%% %.3f (%.2fx)" % (100 * rho, flops_bound(rho=rho),
                                         1 / flops_bound(rho=rho), 100 * r0,
                                         flops_bound(rho0=r0, rho=rho),
                                         1 / flops_bound(rho0=r0, rho=rho)))


if __name__ == "__main__":
    main()
