"""DPO training speed and memory: trl's defaults against `swiftnb.dpo`, lever by lever (issue 9's DPO comparison).

    python bench/dpo_speed.py [--model Qwen2.5-1.5B-Instruct] [--steps 8] [--configs all] [--out bench/dpo_speed.json]
    python bench/dpo_speed.py --model tiny-text --steps 3 --cpu      # a smoke run of every configuration on the CPU

Workload: a random-weight model of the named shape (`make_random`), bf16, LoRA r8 alpha 32 on every linear layer; preference
rows whose prompt and answers follow the same log-normal length distribution as bench/train_speed.py (prompt ~1/5 of the
tokens, each answer the rest, so a pair is ~1.8x a chat row); 16 pairs per optimizer step, the same order for everyone.
tokens/s counts the real tokens of chosen and rejected sequences (trl does not count them; swiftnb's trainers do), over the
steps after the first two (and, as overall_tokens_per_s, over the whole run: a precomputed reference pass runs
before step 1). trl 1.16 already runs chosen and rejected in one forward (concatenated), so the levers left are
gradient checkpointing, the reference pass (every step, or precomputed once before training), fused LoRA layers and
Liger's fused DPO loss.
"""
import argparse, json, math, random, sys, tempfile, time
from pathlib import Path

def pairs(n, seed=0, median=300, sigma=0.75, max_tokens=2048):
    rnd = random.Random(seed)
    words = ('the model data train token learn answer question image audio value layer memory speed batch loss rate '
             'python function return list number result first second then because which where about would could').split()
    say = lambda k: ' '.join(rnd.choice(words) for _ in range(max(4, k // 2)))
    out = []
    for _ in range(n):
        t = min(max_tokens//2 - 64, int(rnd.lognormvariate(math.log(median), sigma)))
        q, a = max(8, t // 5), max(8, t - t // 5)
        out.append({'messages': [{'role': 'user', 'content': say(q)}, {'role': 'assistant', 'content': say(a)}],
                    'rejected_response': say(a)})
    return out

GLOBAL = 16   # pairs per optimizer step
EACH = dict(precompute_ref_log_probs=False)   # trl's default: a reference forward in every step
CONFIGS = {   # name -> dpo() overrides (swiftnb now precomputes the reference log-probs where a run sees every row)
    'trl defaults (checkpointing on, reference pass every step, peft LoRA)':
        dict(gradient_checkpointing=True, fused_lora=False, per_device_train_batch_size=8, gradient_accumulation_steps=2, trl_args=EACH),
    'swiftnb defaults': dict(per_device_train_batch_size=8, gradient_accumulation_steps=2),
    'swiftnb defaults, reference pass every step': dict(per_device_train_batch_size=8, gradient_accumulation_steps=2, trl_args=EACH),
    '+no checkpointing': dict(gradient_checkpointing=False, per_device_train_batch_size=8, gradient_accumulation_steps=2),
    '+liger DPO loss': dict(gradient_checkpointing=False, per_device_train_batch_size=8, gradient_accumulation_steps=2,
                            trl_args=dict(use_liger_kernel=True)),
}

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--model', default='Qwen2.5-1.5B-Instruct'); ap.add_argument('--steps', type=int, default=8)
    ap.add_argument('--configs', default='all'); ap.add_argument('--out', default='bench/dpo_speed.json'); ap.add_argument('--cpu', action='store_true')
    a = ap.parse_args()
    import torch
    from transformers import TrainerCallback
    from swiftnb.core import make_random, make_tiny, device_info
    from swiftnb.dpo import dpo
    cuda = torch.cuda.is_available() and not a.cpu
    d = make_tiny('text') if a.model.startswith('tiny') else make_random(a.model, Path(tempfile.mkdtemp())/'m')
    names = list(CONFIGS) if a.configs == 'all' else a.configs.split('|')
    data = pairs(GLOBAL*a.steps)
    out = dict(date=time.strftime('%Y-%m-%d'), card=torch.cuda.get_device_name() if cuda else 'cpu', torch=torch.__version__,
               command=' '.join(['python'] + sys.argv), pairs_per_step=GLOBAL, steps=a.steps, device=str(device_info()), results={})
    class Clock(TrainerCallback):
        def __init__(self): self.t = []
        def on_step_end(self, args, state, control, **kw):
            if cuda: torch.cuda.synchronize()
            self.t.append((time.perf_counter(), state.num_input_tokens_seen))
    for name in names:
        kw = dict(CONFIGS[name])
        if not cuda: kw.update(trl_args={k: v for k, v in (kw.get('trl_args') or {}).items() if k != 'use_liger_kernel'} or None)
        if cuda: torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
        c = Clock()
        try:
            r = dpo(str(d), data, output_dir=tempfile.mkdtemp(), max_steps=a.steps, learning_rate=1e-5, lora_rank=8, lora_alpha=32,
                    logging_steps=1, save_steps=10**6, report_to='none', dashboard=False, callbacks=[c], **kw)
        except Exception as e:
            out['results'][name] = dict(error=f"{type(e).__name__}: {str(e)[:400]}"); print(name, out['results'][name], flush=True); continue
        (t0, n0), (t1, n1) = c.t[min(1, len(c.t) - 2)], c.t[-1]
        res = out['results'][name] = dict(tokens_per_s=(n1 - n0)/max(t1 - t0, 1e-9), step_s=(t1 - t0)/max(len(c.t) - 2, 1),
                                          # the whole run, a precomputed reference pass included (it runs before step 1)
                                          overall_tokens_per_s=n1/r.metrics['train_runtime'],
                                          peak_gib=torch.cuda.max_memory_allocated()/2**30 if cuda else None,
                                          first_loss=r.losses[0] if r.losses else None, args={k: r.manifest['args'].get(k) for k in
                                          ('gradient_checkpointing', 'fused_lora', 'per_device_train_batch_size', 'trl_args')},
                                          precompute_ref_log_probs=r.manifest.get('precompute_ref_log_probs'))
        base = next(iter(out['results'].values())).get('tokens_per_s')
        print(f"{name} | {res['tokens_per_s']:,.0f} tok/s ({res['tokens_per_s']/base:.2f}x) | peak {res['peak_gib']} | loss {res['first_loss']}", flush=True)
        Path(a.out).parent.mkdir(parents=True, exist_ok=True); Path(a.out).write_text(json.dumps(out, indent=1))

if __name__ == '__main__': main()
