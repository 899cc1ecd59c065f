"""Decode speed of the transformers backend on a GPU against plain `model.generate`, same call, same card.

    python bench/infer_speed.py [--model Qwen2.5-1.5B-Instruct] [--contenders plain,static,swiftnb] [--out bench/infer_speed.json]

Random weights of the model's shape, bf16, sdpa, 128 prompt tokens, 256 new tokens, greedy, batch 1 and 32. Contenders:
- plain: `model.generate` with its defaults (dynamic cache);
- static: `generate(cache_implementation='static')` (transformers compiles its decode step);
- swiftnb: `StaticDecoder`, what `TransformersEngine` runs on a GPU for text models (static cache, the one-token step and
  the choice of the token compiled into CUDA graphs, one host sync per 8 tokens; q/k/v and gate/up fused, sdpa's own GQA:
  bench/decode_levers.py measures each).
- engine: the same through swiftnb's front door, `TransformersEngine.infer(texts, batch_size=B, max_new_tokens=256)` on the same
  model (it chooses the decoder by itself): everything a user's call does on top — the chat template, tokenizing, left padding,
  the settings' checks, decoding the text. Its prompts are text of about the same length (the tiny tokenizer's words), and the
  template's end-of-turn token stays a stop token, so a row may end early on random weights (engine_new_tokens says how many).
No end token is set, so every contender makes all 256 tokens. Each timing is the mean of 3 calls after a warm-up call (the
warm-up compiles; its time is reported as first_call_s).
Equality: on random weights the logits are nearly flat, and rounding (bf16, and in float32 a fused matmul or a longer masked
cache) flips greedy choices, so the paths are compared in float64 (64 new tokens, batch 1 and 32), where rounding cannot
decide: same_tokens_fp64 is the fraction of positions where swiftnb's tokens equal plain generate's. same_tokens_bf16 (the
speed runs) is reported for information."""
import argparse, json, time
from pathlib import Path
import torch
from transformers import AutoModelForCausalLM
from swiftnb.core import make_random
from swiftnb.core import load_processor
from swiftnb.infer import StaticDecoder, TransformersEngine

ap = argparse.ArgumentParser()
ap.add_argument('--model', default='Qwen2.5-1.5B-Instruct'); ap.add_argument('--out', default='bench/infer_speed.json')
ap.add_argument('--new', type=int, default=256); ap.add_argument('--prompt', type=int, default=128)
ap.add_argument('--batches', default='1,32'); ap.add_argument('--reps', type=int, default=3)
ap.add_argument('--contenders', default='plain,static,swiftnb')   # static (transformers' compiled generate) is for information
ap.add_argument('--fp64', type=int, default=1, help='0: leave out the float64 equality check (the speed runs only)')
a = ap.parse_args()
if not {'plain', 'swiftnb'} <= set(a.contenders.split(',')): ap.error('--contenders must include plain and swiftnb (the ratio is theirs)')
path = make_random(a.model, dtype='bfloat16')
res = dict(date=time.strftime('%Y-%m-%d'), model=a.model, card=torch.cuda.get_device_name(), torch=torch.__version__,
           prompt=a.prompt, new=a.new, command=' '.join(['python bench/infer_speed.py'] + [f'--{k} {v}' for k, v in vars(a).items() if k != 'out']), runs=[], equality_fp64=[])

def load(dtype):
    m = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation='sdpa', device_map={'': 0}).eval()
    m.generation_config.eos_token_id = None      # every contender makes all the new tokens
    return m

def prompt(bs, V):
    g = torch.Generator().manual_seed(bs)
    return torch.randint(10, V - 10, (bs, a.prompt), generator=g).cuda()

def timed(fn, reps):
    t = time.perf_counter(); out = fn(); torch.cuda.synchronize(); first = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(reps): out = fn()
    torch.cuda.synchronize()
    return out, (time.perf_counter() - t) / reps, first

def contenders(m, dec, ids, new):
    am = torch.ones_like(ids)
    kw = dict(max_new_tokens=new, do_sample=False, pad_token_id=0)
    return {'plain': lambda: m.generate(ids, attention_mask=am, **kw)[:, ids.shape[1]:],
            'static': lambda: m.generate(ids, attention_mask=am, cache_implementation='static', **kw)[:, ids.shape[1]:],
            'swiftnb': lambda: dec(ids, am, new, [], 0)}

def texts(bs):
    "bs prompts of about a.prompt tokens once templated: the tiny tokenizer's own words."
    g, V = torch.Generator().manual_seed(1000 + bs), len(proc)
    return [proc.decode(torch.randint(200, V - 50, (a.prompt - 12,), generator=g).tolist()) for _ in range(bs)]

m = load(torch.bfloat16); dec = StaticDecoder(m)
proc = load_processor(path)
eng = TransformersEngine(m, proc, name=a.model) if 'engine' in a.contenders.split(',') else None
with torch.inference_mode():
    for bs in map(int, a.batches.split(',')):
        ids, r, outs = prompt(bs, m.config.vocab_size), dict(batch=bs), {}
        for name, fn in contenders(m, dec, ids, a.new).items():
            if name not in a.contenders.split(','): continue
            outs[name], dt, first = timed(fn, a.reps)
            r[f'{name}_tok_s'], r[f'{name}_ms_per_token_step'], r[f'{name}_first_call_s'] = round(bs * a.new / dt, 1), round(1000 * dt / a.new, 2), round(first, 1)
        if eng is not None:   # swiftnb's front door: text in, text out
            qs = texts(bs)
            _, dt, first = timed(lambda: eng.infer(qs, batch_size=bs, max_new_tokens=a.new), a.reps)
            n = int((eng.last_ids != proc.pad_token_id).sum()) if torch.is_tensor(eng.last_ids) else None
            r.update(engine_tok_s=round(bs * a.new / dt, 1), engine_ms_per_token_step=round(1000 * dt / a.new, 2), engine_first_call_s=round(first, 1),
                     engine_path=eng.last_path, engine_new_tokens=n, engine_vs_plain=round(bs * a.new / dt / r['plain_tok_s'], 2))
        r['swiftnb_vs_plain'] = round(r['swiftnb_tok_s'] / r['plain_tok_s'], 2)
        if 'static' in outs: r['static_vs_plain'] = round(r['static_tok_s'] / r['plain_tok_s'], 2)
        r['same_tokens_bf16'] = (outs['swiftnb'] == outs['plain']).float().mean().item()
        res['runs'].append(r); print(r, flush=True)
        Path(a.out).write_text(json.dumps(res, indent=1))
del m, dec, eng; torch.cuda.empty_cache()
m = load(torch.float64) if a.fp64 else None; dec = StaticDecoder(m) if a.fp64 else None
with torch.inference_mode():
    for bs in map(int, a.batches.split(',')) if a.fp64 else ():
        ids = prompt(bs, m.config.vocab_size)
        c = contenders(m, dec, ids, 64)
        p, f = c['plain'](), c['swiftnb']()
        first = (p != f).any(0).nonzero()
        e = dict(batch=bs, new=64, same_tokens_fp64=(p == f).float().mean().item(), rows_identical=int((p == f).all(1).sum()),
                 first_difference=int(first[0]) if len(first) else None)
        res['equality_fp64'].append(e); print(e, flush=True)
Path(a.out).write_text(json.dumps(res, indent=1))
