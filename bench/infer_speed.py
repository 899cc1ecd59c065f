"""Decode speed of transformers generation on a GPU: plain `model.generate` (dynamic cache) against a static cache with the
decode step compiled (CUDA graphs), at batch 1 and 32, on a random-weight model of Qwen2.5-1.5B's shape, bf16, sdpa,
128 prompt tokens, 256 new tokens, greedy. Checks that both give the same tokens.
Usage (GPU): python bench/infer_speed.py [--model Qwen2.5-1.5B-Instruct] [--out bench/infer_speed.json]"""
import argparse, json, time
from pathlib import Path
import torch
from transformers import AutoModelForCausalLM
from swiftnb.core import make_random

ap = argparse.ArgumentParser()
ap.add_argument('--model', default='Qwen2.5-1.5B-Instruct'); ap.add_argument('--out', default='bench/infer_speed.json')
ap.add_argument('--new', type=int, default=256); ap.add_argument('--prompt', type=int, default=128)
a = ap.parse_args()
path = make_random(a.model, dtype='bfloat16')
m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, attn_implementation='sdpa', device_map={'': 0}).eval()
V = m.config.vocab_size
res = dict(model=a.model, card=torch.cuda.get_device_name(), torch=torch.__version__, prompt=a.prompt, new=a.new, runs=[])

def run(bs, mode, reps=2):
    g = torch.Generator().manual_seed(bs)
    ids = torch.randint(10, V - 10, (bs, a.prompt), generator=g).cuda()
    kw = dict(max_new_tokens=a.new, min_new_tokens=a.new, do_sample=False, pad_token_id=0)
    if mode == 'static': kw.update(cache_implementation='static')
    with torch.inference_mode():
        out = m.generate(ids, attention_mask=torch.ones_like(ids), **kw)   # warm-up (and compilation)
        torch.cuda.synchronize(); t = time.time()
        for _ in range(reps): out = m.generate(ids, attention_mask=torch.ones_like(ids), **kw)
        torch.cuda.synchronize(); dt = (time.time() - t) / reps
    return out[:, a.prompt:].cpu(), dt

for bs in (1, 32):
    base, t0 = run(bs, 'plain')
    fast, t1 = run(bs, 'static')
    same = (base == fast).float().mean().item()
    r = dict(batch=bs, plain_tok_s=round(bs * a.new / t0, 1), static_compiled_tok_s=round(bs * a.new / t1, 1), speedup=round(t0 / t1, 2),
             plain_ms_per_step=round(1000 * t0 / a.new, 2), static_ms_per_step=round(1000 * t1 / a.new, 2), same_tokens=same)
    res['runs'].append(r); print(r, flush=True)
Path(a.out).parent.mkdir(parents=True, exist_ok=True); Path(a.out).write_text(json.dumps(res, indent=1))
