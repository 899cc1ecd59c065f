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
speed runs) is reported for information.
Trained models (`--trained`, on by default): random weights say nothing of a decoder that answers wrongly once the logits
are peaked (transformers 5.17's cache once made the static decoder answer 'P tb rateo' where generate said 'Paris.'). So
the benchmark also fine-tunes, on this GPU, the tiny text model (LoRA) and a model of `--model`'s shape (its random
weights fully fine-tuned, `--shape_tuner`), on the 16 capitals of tutorial 1 for `--train_steps` steps each, and asks both
the 16 questions greedily through `Infer` with the fast decoder (`fast=None`, the GPU default) and with plain generate
(`fast=False`): trained[].same_answers must be 16 of 16.
Bandwidth: at batch 1 each new token reads every weight once, so the limit is the card's memory bandwidth over the
weights' bytes (KV-cache reads are under 1% here); swiftnb_of_bandwidth is the fraction reached (3.35 TB/s for an
H100 SXM, 4.8 TB/s for an H200)."""
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
ap.add_argument('--trained', type=int, default=1, help='0: leave out the trained models\' answers check')
ap.add_argument('--train_steps', type=int, default=200, help='fine-tuning steps of each trained model')
ap.add_argument('--shape_tuner', default='full', help="how the model of --model's shape is fine-tuned for the trained check: "
                "its random weights learn the capitals under full fine-tuning; LoRA alone (tried) leaves them near-flat")
ap.add_argument('--smoke', action='store_true', help='the trained check only, on the tiny model (runs on a CPU)')
a = ap.parse_args()
if not {'plain', 'swiftnb'} <= set(a.contenders.split(',')): ap.error('--contenders must include plain and swiftnb (the ratio is theirs)')
BANDWIDTH = {'H100': 3.35e12, 'H200': 4.8e12}   # bytes/s of HBM (SXM cards), for the batch-1 limit

CAPITALS = [('France', 'Paris'), ('Japan', 'Tokyo'), ('Italy', 'Rome'), ('Spain', 'Madrid'), ('Egypt', 'Cairo'),
            ('Peru', 'Lima'), ('Kenya', 'Nairobi'), ('Cuba', 'Havana'), ('Chile', 'Santiago'), ('Greece', 'Athens'),
            ('Norway', 'Oslo'), ('Poland', 'Warsaw'), ('Canada', 'Ottawa'), ('Ghana', 'Accra'), ('Nepal', 'Kathmandu'),
            ('Austria', 'Vienna')]

def trained_check(model, steps, tmp, tuner='lora'):
    "Fine-tune `model` (`tuner`) on the capitals here; the fast decoder's greedy answers against plain generate's."
    from swiftnb.sft import sft
    from swiftnb.infer import Infer
    rows = [{'messages': [{'role': 'user', 'content': f'What is the capital of {c}?'},
                          {'role': 'assistant', 'content': f'{k}.'}]} for c, k in CAPITALS]
    out = Path(tmp) / model.replace('/', '_')
    # the tiny model by its name: a random model's folder sits in swiftnb's 'tiny' cache too (which once gave it 1e-2)
    lr = 1e-2 if model == 'tiny-text' else 1e-4 if tuner == 'full' else 2e-3
    r = sft(model, rows, output_dir=out, max_steps=steps, learning_rate=lr, tuner=tuner,
            per_device_train_batch_size=16, warmup_ratio=0., logging_steps=max(steps // 4, 1), save_steps=steps,
            report_to='none', dashboard=False)
    qs = [f'What is the capital of {c}?' for c, _ in CAPITALS]
    got = {}
    for fast in (False, None):
        eng = Infer.from_pretrained(out, fast=fast)
        got[fast] = eng.infer(qs, max_new_tokens=16)
        path = getattr(eng, 'last_path', None)
        del eng
        if torch.cuda.is_available(): torch.cuda.empty_cache()
    return dict(model=model, tuner=tuner, steps=steps, loss_first=round(r.losses[0], 4), loss_last=round(r.losses[-1], 4),
                fast_path=path, same_answers=sum(x == y for x, y in zip(got[False], got[None])),
                right_answers=sum(k in x for x, (_, k) in zip(got[None], CAPITALS)), questions=len(qs),
                fast_answers=got[None][:4], plain_answers=got[False][:4])

if a.smoke:   # the trained check alone on the tiny model: proves this script's own code on a CPU
    import tempfile
    print(trained_check('tiny-text', 8, tempfile.mkdtemp()), trained_check('tiny-text', 4, tempfile.mkdtemp(), 'full'))
    raise SystemExit
path = make_random(a.model, dtype='bfloat16')
BATCHES = [int(b) for b in a.batches.split(',') if b]   # --batches '': the trained check alone
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
weight_bytes = sum(p.numel() * p.element_size() for p in m.parameters())
bw = next((v for k, v in BANDWIDTH.items() if k in res['card']), None)
res.update(weight_gib=round(weight_bytes / 2**30, 2), bandwidth_bytes_s=bw,
           bandwidth_limit_tok_s=round(bw / weight_bytes, 1) if bw else None)
proc = load_processor(path)
eng = TransformersEngine(m, proc, name=a.model) if 'engine' in a.contenders.split(',') else None
with torch.inference_mode():
    for bs in BATCHES:
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
        if bs == 1 and bw: r['swiftnb_of_bandwidth'] = round(r['swiftnb_tok_s'] / res['bandwidth_limit_tok_s'], 3)
        res['runs'].append(r); print(r, flush=True)
        Path(a.out).write_text(json.dumps(res, indent=1))
del m, dec, eng; torch.cuda.empty_cache()
m = load(torch.float64) if a.fp64 else None; dec = StaticDecoder(m) if a.fp64 else None
with torch.inference_mode():
    for bs in BATCHES if a.fp64 else ():
        ids = prompt(bs, m.config.vocab_size)
        c = contenders(m, dec, ids, 64)
        p, f = c['plain'](), c['swiftnb']()
        first = (p != f).any(0).nonzero()
        e = dict(batch=bs, new=64, same_tokens_fp64=(p == f).float().mean().item(), rows_identical=int((p == f).all(1).sum()),
                 first_difference=int(first[0]) if len(first) else None)
        res['equality_fp64'].append(e); print(e, flush=True)
Path(a.out).write_text(json.dumps(res, indent=1))
del m, dec; torch.cuda.empty_cache()
if a.trained:
    import tempfile
    res['trained'] = []
    for model, tuner in (('tiny-text', 'lora'), (path, a.shape_tuner)):
        res['trained'].append(trained_check(str(model), a.train_steps, tempfile.mkdtemp(), tuner))
        print(res['trained'][-1], flush=True)
        Path(a.out).write_text(json.dumps(res, indent=1))
