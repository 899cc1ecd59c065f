"""A full fine-tune too large for one GPU, sharded over several with FSDP: `swiftnb.sft(..., tuner='full', nproc_per_node=N)`.

    python bench/fsdp_full.py [--model Qwen2.5-7B-Instruct] [--nproc 2] [--steps 4] [--fsdp auto|true] [--card-gib 80] [--out bench/fsdp_full.json]

Random weights of the model's shape (bf16), train_speed.py's chat rows (log-normal lengths, median ~300 tokens), 16 rows per
process per optimizer step, max_length 2048, everything else from sft's plan. With --fsdp auto the plan decides: it shards only
when one GPU cannot hold the run (its estimate for one GPU is recorded next to the card's memory). The run saves the full
model at the end (gathered from the shards on rank 0); the record says how big it is and whether it loads.
--card-gib N makes each GPU an N GiB card: this process holds the rest of its memory for the whole run, so the training processes
see (and can use) what an empty N GiB card offers, and sft plans for it."""
import argparse, json, sys, tempfile, time
from pathlib import Path
from sft_speed import rows
from scale_speed import rate

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--model', default='Qwen2.5-7B-Instruct'); ap.add_argument('--nproc', type=int, default=2)
    ap.add_argument('--steps', type=int, default=4); ap.add_argument('--fsdp', default='auto'); ap.add_argument('--out', default='bench/fsdp_full.json')
    ap.add_argument('--card-gib', type=float, default=None)
    a = ap.parse_args()
    import torch
    from swiftnb.core import device_info, estimate_memory
    held = []   # kept until the end: the training processes see only card_gib (less the ~0.6 GiB an empty card shows in use)
    for i in range(torch.cuda.device_count() if a.card_gib else 0):
        extra = torch.cuda.mem_get_info(i)[0] - int((a.card_gib - 0.6) * 2**30)
        if extra > 0: held.append(torch.empty(extra, dtype=torch.uint8, device=i))
    dev = device_info()
    one = estimate_memory(a.model, 'full', 'bfloat16', None, 2048, 1, True, True)
    res = dict(date=time.strftime('%Y-%m-%d'), card=torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu', gpus=torch.cuda.device_count(), torch=torch.__version__,
               command=' '.join(['python'] + sys.argv), device=str(dev), one_gpu_estimate_gib=round(one.total, 1),
               one_gpu_budget_gib=round(dev.free_gib*0.85, 1), card_gib=a.card_gib)
    save = lambda: (Path(a.out).parent.mkdir(parents=True, exist_ok=True), Path(a.out).write_text(json.dumps(res, indent=1, default=str)))
    # the random model, the checkpoint (weights and optimizer state) and the export take ~100 GB at 7B: all are removed at the end
    # (a second run on the same machine failed writing its checkpoint on a full disk); the tiny model is swiftnb's shared cache
    import shutil
    made, out = (None if a.model == 'tiny-text' else Path(tempfile.mkdtemp())), Path(tempfile.mkdtemp())
    try: run(a, res, save, made, out)
    finally:
        for p in (made, out):
            if p is not None: shutil.rmtree(p, ignore_errors=True)

def run(a, res, save, made, out):
    from swiftnb.core import make_random, make_tiny
    from swiftnb.sft import sft
    t = time.perf_counter()
    d = make_tiny('text') if made is None else make_random(a.model, made/'m', dtype='bfloat16')   # tiny: a CPU smoke run
    res['make_model_s'] = time.perf_counter() - t; save()
    t = time.perf_counter()
    try:
        r = sft(str(d), rows(16*a.nproc*a.steps), output_dir=str(out), tuner='full', nproc_per_node=a.nproc, max_steps=a.steps,
                per_device_train_batch_size=16, gradient_accumulation_steps=1, logging_steps=1, save_steps=10**6, report_to='none',
                dashboard=False, **({} if a.fsdp == 'auto' else dict(fsdp=a.fsdp.lower() == 'true')))
    except Exception as e:
        res['error'] = f"{type(e).__name__}: {str(e)[-3000:]}"; save(); print(res['error']); return
    m = r.manifest
    res.update(call_s=time.perf_counter() - t, tokens_per_s=rate(r.history), losses=r.losses, peak_gib_rank0=m.get('peak_gpu_gib'),
               world_size=m.get('world_size'), args={k: m['args'].get(k) for k in ('fsdp', 'tuner', 'gradient_checkpointing', 'packing',
               'max_packed_tokens', 'attn_impl', 'use_liger', 'dtype', 'learning_rate')},
               final_files={p.name: p.stat().st_size for p in Path(r.final_dir).iterdir()})
    save()
    from safetensors import safe_open
    n = 0
    for f in Path(r.final_dir).glob('*.safetensors'):
        with safe_open(str(f), 'pt') as s: n += sum(s.get_slice(k).get_shape().numel() if hasattr(s.get_slice(k).get_shape(), 'numel') else
                                                    __import__('math').prod(s.get_slice(k).get_shape()) for k in s.keys())
    res['final_params'] = n; save(); print(json.dumps(res, indent=1, default=str))

if __name__ == '__main__': main()
