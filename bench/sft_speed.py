"""LoRA fine-tuning speed and memory of `swiftnb.sft` on a GPU, on a random model of a real shape (default Qwen2.5-1.5B),
with chat-length rows: swiftnb's defaults (its plan; Liger where installed; padding-free packing) against the plain path
(padded batches, no fused kernels, gradient checkpointing on), same rows, same steps, same batch size.

    python bench/sft_speed.py [--model Qwen2.5-1.5B-Instruct] [--steps 12] [--out bench/sft_speed.json]

Rows: 512 conversations whose token lengths follow a log-normal (median ~300, mean ~400, cut at 2048), built from a fixed
word list with a fixed seed; every contender sees the same rows in the same order. tokens/s counts real (non-padding)
tokens over the steps after the first two (warm-up excluded); peak memory is torch.cuda.max_memory_allocated.
"""
import argparse, json, math, os, random, sys, tempfile, time
from pathlib import Path

def rows(n=512, seed=0, median=300, sigma=0.75, max_tokens=2048):
    rnd = random.Random(seed)
    words = ('the model data train token learn answer question image audio value layer memory speed batch loss rate '
             'python function return list number result first second then because which where about would could').split()
    out = []
    for _ in range(n):
        t = min(max_tokens - 64, int(rnd.lognormvariate(math.log(median), sigma)))   # ~ tokens wanted
        q, a = max(8, t // 5), max(8, t - t // 5)
        say = lambda k: ' '.join(rnd.choice(words) for _ in range(k // 2))           # ~2 tokens per word here
        out.append({'messages': [{'role': 'user', 'content': say(q)}, {'role': 'assistant', 'content': say(a)}]})
    return out

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--model', default='Qwen2.5-1.5B-Instruct'); ap.add_argument('--steps', type=int, default=12)
    ap.add_argument('--batch', type=int, default=8); ap.add_argument('--out', default='bench/sft_speed.json')
    a = ap.parse_args()
    import torch
    from transformers import TrainerCallback
    from swiftnb.core import make_random, device_info
    from swiftnb.core.errors import has_module
    from swiftnb.sft import sft
    d = make_random(a.model, Path(tempfile.mkdtemp())/'m')
    data = rows()
    class Clock(TrainerCallback):
        def __init__(self): self.t = []
        def on_step_end(self, args, state, control, **kw):
            torch.cuda.synchronize(); self.t.append((time.perf_counter(), state.num_input_tokens_seen))
    res = {}
    for name, kw in [('plain (padded, no fused kernels, checkpointing on)', dict(packing=False, use_liger=False, gradient_checkpointing=True)),
                     ('swiftnb defaults (plan, packing, liger if installed)', dict())]:
        torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
        c = Clock()
        r = sft(str(d), data, output_dir=tempfile.mkdtemp(), max_steps=a.steps, per_device_train_batch_size=a.batch,
                gradient_accumulation_steps=1, learning_rate=1e-4, logging_steps=1, save_steps=10**6, report_to='none',
                dashboard=False, callbacks=[c], **kw)
        (t0, n0), (t1, n1) = c.t[1], c.t[-1]
        args = r.manifest['args']
        res[name] = dict(tokens_per_s=(n1 - n0)/(t1 - t0), step_s=(t1 - t0)/(len(c.t) - 2), peak_gib=torch.cuda.max_memory_allocated()/2**30,
                         packing=args['packing'], use_liger=args['use_liger'], gradient_checkpointing=args['gradient_checkpointing'],
                         attn_impl=args['attn_impl'], batch=args['per_device_train_batch_size'], first_loss=r.losses[0])
        print(name, json.dumps(res[name]), flush=True)
    out = dict(date=time.strftime('%Y-%m-%d'), card=torch.cuda.get_device_name(), model_shape=a.model, steps=a.steps,
               batch=a.batch, liger_installed=has_module('liger_kernel'), device=str(device_info()), results=res,
               command=' '.join(['python'] + sys.argv))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True); Path(a.out).write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))

if __name__ == '__main__': main()
