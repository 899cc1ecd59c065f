"""Data-parallel scaling of `swiftnb.sft` with its defaults: 1 GPU against N.

    python bench/scale_speed.py [--model Qwen2.5-1.5B-Instruct] [--nprocs 1,2] [--steps 8] [--out bench/scale_speed.json]

Workload: train_speed.py's rows (log-normal chat lengths, median ~300) on a random-weight model of the named shape, LoRA r8
alpha 32 on every linear layer, bf16, max_length 2048. Each process takes 32 rows per optimizer step (its own pack), so
N processes train N x 32 rows per step: the work per GPU is the same, and scaling = tokens/s on N GPUs / tokens/s on one.
`sft(..., nproc_per_node=N)` starts the processes through torchrun, as a user would. tokens/s comes from the run's own log
(`history.json`: real tokens seen, summed over processes, and the trainer's clock) over the steps after the first two.
The 1-GPU run is one process: since swiftnb trains on one GPU per process, it uses cuda:0 alone on a machine of several.
"""
import argparse, json, sys, tempfile, time
from pathlib import Path

from sft_speed import rows

PER_GPU = 32

def rate(hist):
    "Real tokens/s over the logged steps after the first two, from the trainer's log (tokens summed over processes)."
    steps = [h for h in hist if 'num_input_tokens_seen' in h and 'train_runtime' in h and 'loss' in h]
    (a, b) = steps[min(1, len(steps) - 2)], steps[-1]
    return (float(b['num_input_tokens_seen']) - float(a['num_input_tokens_seen']))/(float(b['train_runtime']) - float(a['train_runtime']))

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--model', default='Qwen2.5-1.5B-Instruct'); ap.add_argument('--nprocs', default='1,2')
    ap.add_argument('--steps', type=int, default=8);
    ap.add_argument('--attn', default=None, help="attn_impl for the LoRA runs (default: the plan's, varlen where torch has it; 'sdpa' and 'varlen' compile nothing)")
    ap.add_argument('--out', default='bench/scale_speed.json')
    a = ap.parse_args()
    import torch
    from swiftnb.core import make_random, device_info
    from swiftnb.sft import sft
    out = dict(date=time.strftime('%Y-%m-%d'), card=torch.cuda.get_device_name(), gpus=torch.cuda.device_count(),
               torch=torch.__version__, command=' '.join(['python'] + sys.argv), device=str(device_info()), results={})
    save = lambda: (Path(a.out).parent.mkdir(parents=True, exist_ok=True), Path(a.out).write_text(json.dumps(out, indent=1)))
    model = a.model
    d = make_random(model, Path(tempfile.mkdtemp())/'m')
    import gc
    for n in map(int, a.nprocs.split(',')):
        kw = dict(per_device_train_batch_size=PER_GPU, gradient_accumulation_steps=1, lora_rank=8, lora_alpha=32)
        if a.attn: kw['attn_impl'] = a.attn
        name = f"{model} LoRA, swiftnb defaults{f' but attn_impl={a.attn}' if a.attn else ''}, {n} GPU{'s'[:n > 1]}"
        t = time.perf_counter()
        try:
            r = sft(str(d), rows(PER_GPU*n*a.steps), output_dir=tempfile.mkdtemp(), max_steps=a.steps, learning_rate=1e-4,
                    logging_steps=1, save_steps=10**6, report_to='none', dashboard=False, nproc_per_node=n if n > 1 else None, **kw)
        except Exception as e:
            out['results'][name] = dict(error=f"{type(e).__name__}: {str(e)[-1500:]}"); print(name, out['results'][name], flush=True); save(); continue
        tps, m = rate(r.history), r.manifest
        res = out['results'][name] = dict(nproc=n, tokens_per_s=tps, call_s=time.perf_counter() - t, losses=r.losses,
                                          peak_gib_rank0=m.get('peak_gpu_gib'), world_size=m.get('world_size'),
                                          args={k: m['args'].get(k) for k in ('packing', 'attn_impl', 'use_liger', 'gradient_checkpointing',
                                                                           'max_packed_tokens', 'fused_lora', 'tuner')})
        one = next(iter(out['results'].values())).get('tokens_per_s')
        print(f"{name} | {tps:,.0f} tok/s" + (f" | {tps/one:.2f}x one GPU's" if one and n > 1 else '') +
              f" | rank-0 peak {res['peak_gib_rank0']} GiB | losses {[round(x, 3) for x in r.losses]}", flush=True)
        del r; gc.collect(); torch.cuda.empty_cache(); save()
    save()

if __name__ == '__main__': main()
