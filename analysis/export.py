"""Turns the output of `reluscope export --checkpoint F --out DIR` (params.bin +
model.json) into DIR/state_dict.pt (a PyTorch state_dict in Hugging Face
GPT-2 naming) and DIR/config.json (the matching GPT2Config, ReLU):

    /usr/bin/python3 -m analysis.export DIR

analysis/torch_model.py loads the result; docs/analysis.md gives the mapping.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

from .torch_model import hf_config

# reluscope tensor -> (Hugging Face name, per layer?, shape of one layer's slice);
# reluscope stores weights [in][out] like GPT-2's Conv1D, so only the untied head
# (lmhead [d][V], read as an nn.Linear weight [V][d]) is transposed.
MAPPING = {
    "wte": ("transformer.wte.weight", False, lambda s: (s["V"], s["d"])),
    "wpe": ("transformer.wpe.weight", False, lambda s: (s["T"], s["d"])),
    "ln1w": ("transformer.h.{l}.ln_1.weight", True, lambda s: (s["d"],)),
    "ln1b": ("transformer.h.{l}.ln_1.bias", True, lambda s: (s["d"],)),
    "qkvw": ("transformer.h.{l}.attn.c_attn.weight", True, lambda s: (s["d"], 3 * s["d"])),
    "qkvb": ("transformer.h.{l}.attn.c_attn.bias", True, lambda s: (3 * s["d"],)),
    "attprojw": ("transformer.h.{l}.attn.c_proj.weight", True, lambda s: (s["d"], s["d"])),
    "attprojb": ("transformer.h.{l}.attn.c_proj.bias", True, lambda s: (s["d"],)),
    "ln2w": ("transformer.h.{l}.ln_2.weight", True, lambda s: (s["d"],)),
    "ln2b": ("transformer.h.{l}.ln_2.bias", True, lambda s: (s["d"],)),
    "fcw": ("transformer.h.{l}.mlp.c_fc.weight", True, lambda s: (s["d"], s["F"])),
    "fcb": ("transformer.h.{l}.mlp.c_fc.bias", True, lambda s: (s["F"],)),
    "fcprojw": ("transformer.h.{l}.mlp.c_proj.weight", True, lambda s: (s["F"], s["d"])),
    "fcprojb": ("transformer.h.{l}.mlp.c_proj.bias", True, lambda s: (s["d"],)),
    "lnfw": ("transformer.ln_f.weight", False, lambda s: (s["d"],)),
    "lnfb": ("transformer.ln_f.bias", False, lambda s: (s["d"],)),
    "lmhead": ("lm_head.weight", False, lambda s: (s["d"], s["V"])),     # tie=0 only
}


def state_dict(folder):
    """(state_dict, size) of an export folder; ValueError on anything unexpected."""
    with open(os.path.join(folder, "model.json")) as f:
        meta = json.load(f)
    if meta.get("format") != "reluscope-export" or meta.get("version") != 1:
        raise ValueError(f"{folder}/model.json: not a reluscope export (format/version)")
    size = meta["size"]
    order = "<" if meta["byte_order"] == "little" else ">"
    flat = np.fromfile(os.path.join(folder, "params.bin"), dtype=order + "f4")
    if len(flat) != meta["num_params"]:
        raise ValueError(f"{folder}/params.bin: {len(flat)} floats, model.json says {meta['num_params']}")
    out = {}
    for t in meta["tensors"]:
        if t["name"] not in MAPPING:
            raise ValueError(f"{folder}: tensor {t['name']} is not known to analysis.export")
        name, per_layer, shape = MAPPING[t["name"]]
        a = flat[t["offset"]:t["offset"] + t["count"]].astype(np.float32)
        if per_layer:
            a = a.reshape((size["L"],) + shape(size))
            for l in range(size["L"]):
                out[name.format(l=l)] = torch.from_numpy(a[l].copy())
        else:
            a = a.reshape(shape(size))
            out[name] = torch.from_numpy((a.T if t["name"] == "lmhead" else a).copy())
    variant = meta.get("variant", {})
    if "lm_head.weight" not in out:
        out["lm_head.weight"] = out["transformer.wte.weight"]      # tied
    return out, size, variant


def hf_state_dict(sd, size, variant):
    """The state_dict for transformers.GPT2LMHeadModel: the variants GPT-2 can
    express get their absent tensors as zeros (pos=none: wpe; mlp_bias=0: the
    MLP biases); pos=rope has no GPT-2 form (ValueError)."""
    if variant.get("pos") == "rope":
        raise ValueError("pos=rope has no GPT-2 form: use analysis/torch_model.py")
    out = dict(sd)
    out.setdefault("transformer.wpe.weight", torch.zeros(size["T"], size["d"]))
    for l in range(size["L"]):
        p = f"transformer.h.{l}.mlp."
        out.setdefault(p + "c_fc.bias", torch.zeros(size["F"]))
        out.setdefault(p + "c_proj.bias", torch.zeros(size["d"]))
    return out


def main(argv):
    p = argparse.ArgumentParser(prog="python3 -m analysis.export", description=__doc__.split("\n\n")[0])
    p.add_argument("folder", help="the --out folder of `reluscope export`")
    args = p.parse_args(argv)
    try:
        sd, size, variant = state_dict(args.folder)
    except (OSError, ValueError, KeyError) as e:
        print(f"analysis.export: error: {args.folder}: {e}", file=sys.stderr)
        return 1
    tmp = os.path.join(args.folder, f".state_dict.pt.tmp.{os.getpid()}")
    torch.save(sd, tmp)
    os.replace(tmp, os.path.join(args.folder, "state_dict.pt"))
    tmp = os.path.join(args.folder, f".config.json.tmp.{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(hf_config(size, variant), f, indent=1)
    os.replace(tmp, os.path.join(args.folder, "config.json"))
    print(f"export: {args.folder}/state_dict.pt, {args.folder}/config.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
