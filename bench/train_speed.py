"""LoRA training speed and memory on a GPU: the plain Hugging Face stack against `swiftnb.sft`, lever by lever.

    python bench/train_speed.py [--models Qwen2.5-1.5B-Instruct,Qwen2.5-7B-Instruct] [--steps 8] [--configs all]
                                [--repeat 3] [--out bench/train_speed.json] [--profile CONFIG [--syncs]]
    python bench/train_speed.py --smoke --configs "swiftnb defaults,baseline,skilled peer"   # CPU dry run, tiny model

Workload (the same for every configuration):
- a random-weight model of the named shape (`swiftnb.core.make_random`; speed does not depend on the weights), bf16;
- LoRA r=8, alpha 32, dropout 0.05, on every linear layer of the language model; AdamW, lr 1e-4, max_length 2048;
- chat rows whose token lengths follow a log-normal with median ~300 and sigma 0.75 (mean ~400, a long tail cut at 2048) --
  roughly the shape of alpaca-gpt4-style instruction data -- built from a fixed word list with a fixed seed; the encoded
  length distribution is measured and written to the output;
- 32 rows per optimizer step in the same order for everyone (the Trainer's seeded sampler); `--steps` optimizer steps.
  tokens/s counts real (non-padding) tokens over the steps after the first two (warm-up and compilation excluded).

Configurations (each one lever on top of the one before; names are the keys of CONFIGS):
- baseline: what a transformers/TRL + peft user gets by default: batches of 8 rows padded to the longest (4 accumulation
  steps), gradient checkpointing on, sdpa attention, no fused kernels;
- then Liger kernels, padding-free packing, no checkpointing, flex attention, larger packed micro-batches, and finally
  `swiftnb defaults` -- `sft()` with nothing set but the 32 rows per optimizer step: its plan picks the rest;
- skilled peer: what a skilled transformers + peft user builds without swiftnb's plan: the plain `Trainer`, peft LoRA,
  rows packed padding-free by transformers' `DataCollatorWithFlattening` (with its flash-attention kwargs: each row's
  cumulative lengths), an attention that keeps packed rows apart, Liger (`use_liger_kernel=True`) and gradient
  checkpointing, 32 rows per optimizer step in one pack. The attention: `flash_attention_2` needs flash-attn, which the
  GPU machine lacks; sdpa, eager and flex_attention let a packed row attend to the rows before it (../shared/TRAPS.md);
  the `kernels` hub's flash attention needs the network. So the peer uses the one varlen FlashAttention there is
  offline, torch's, through swiftnb's registered 'varlen' attention (`register_varlen`: a transformers attention function
  and nothing else of swiftnb's).
- trl SFTTrainer: the same through trl's SFTTrainer, set up as a skilled trl user would (bench/trl_sft.py: padding-free
  batches of 32 rows, Liger, checkpointing, the answers-only loss, the same 'varlen' attention), for issue 31's question
  whether swiftnb's SFT should run on the field's trainer.

`--repeat R` trains 2 + R x (steps - 2) steps per configuration and reports the median tokens/s of R timed windows of
(steps - 2) steps each (`windows` lists them all). `--smoke` runs the tiny text model on the CPU, for a dry run of the
script (numbers meaningless; the peer there runs sdpa without Liger, which the CPU lacks).

Useful MFU = (4 x linear params x tokens + 6 x layers x attention width x sum of len^2 / 2 ... see flops()) / time / peak;
4 x params because LoRA's frozen weights need no weight gradient (forward 2, input gradient 2). Peak is dense bf16:
989 TFLOP/s for an H100 SXM or H200.
"""
import argparse, json, math, os, random, sys, tempfile, time
from pathlib import Path

from sft_speed import rows   # the same chat-length rows as the earlier benchmark (log-normal, median ~300)

GLOBAL = 32   # rows per optimizer step
PEER = 'skilled peer'   # the plain Trainer row (`skilled_peer`), not an sft() configuration
TRL = 'trl SFTTrainer'  # trl's SFTTrainer row (bench/trl_sft.py), not an sft() configuration
PLAIN = dict(packing=False, use_liger=False, gradient_checkpointing=True, attn_impl='sdpa', fused_lora=False)
FAST = dict(packing=True, use_liger=True, attn_impl='flex_attention')
CONFIGS = {   # name -> sft overrides (per_device_train_batch_size x gradient_accumulation_steps = GLOBAL)
    'baseline': dict(PLAIN, per_device_train_batch_size=8, gradient_accumulation_steps=4),
    '+liger': dict(PLAIN, use_liger=True, per_device_train_batch_size=8, gradient_accumulation_steps=4),
    '+packing (sdpa block mask)': dict(PLAIN, use_liger=True, packing=True, per_device_train_batch_size=8, gradient_accumulation_steps=4),
    '+flex attention': dict(PLAIN, **FAST, per_device_train_batch_size=8, gradient_accumulation_steps=4),
    '+32-row packed micro-batches': dict(PLAIN, **FAST, per_device_train_batch_size=32, gradient_accumulation_steps=1),
    '+fused LoRA': dict(PLAIN, **FAST, fused_lora=True, per_device_train_batch_size=32, gradient_accumulation_steps=1),
    '+no checkpointing': dict(PLAIN, **FAST, fused_lora=True, gradient_checkpointing=False, per_device_train_batch_size=32, gradient_accumulation_steps=1),
    'no checkpointing 16-row': dict(PLAIN, **FAST, fused_lora=True, gradient_checkpointing=False, per_device_train_batch_size=16, gradient_accumulation_steps=2),
    'no checkpointing unfused': dict(PLAIN, **FAST, gradient_checkpointing=False, per_device_train_batch_size=32, gradient_accumulation_steps=1),
    # swiftnb with its defaults: only the rows per optimizer step are set (one pack); the plan picks the rest
    'swiftnb defaults': dict(per_device_train_batch_size=GLOBAL, gradient_accumulation_steps=1),
    # the defaults with flex attention instead of varlen (the default before torch's varlen kernel was used; compiles on first use)
    'defaults with flex': dict(per_device_train_batch_size=GLOBAL, gradient_accumulation_steps=1, attn_impl='flex_attention'),
    'defaults profiled': dict(per_device_train_batch_size=GLOBAL, gradient_accumulation_steps=1),   # for --profile (slows it)
    # the defaults without gradient checkpointing (faster where memory is plentiful), and in packs of 4k tokens
    'defaults no checkpointing': dict(per_device_train_batch_size=GLOBAL, gradient_accumulation_steps=1, gradient_checkpointing=False),
    'defaults no checkpointing 4k': dict(per_device_train_batch_size=GLOBAL, gradient_accumulation_steps=1, gradient_checkpointing=False,
                                         max_packed_tokens=4096),
    # no checkpointing in packs set by hand (the plan's estimate sizes them for padded rows without fused LoRA and Liger)
    'no checkpointing 8k': dict(per_device_train_batch_size=GLOBAL, gradient_accumulation_steps=1, gradient_checkpointing=False,
                                max_packed_tokens=8192),
    'no checkpointing 16k': dict(per_device_train_batch_size=GLOBAL, gradient_accumulation_steps=1, gradient_checkpointing=False,
                                 max_packed_tokens=16384),
    'no checkpointing 32k': dict(per_device_train_batch_size=GLOBAL, gradient_accumulation_steps=1, gradient_checkpointing=False,
                                 max_packed_tokens=32768),
    # checkpointing on every 2nd / 4th decoder layer only (checkpoint_every, transformers' every_n_layers): between on and off
    'defaults every 2nd layer': dict(per_device_train_batch_size=GLOBAL, gradient_accumulation_steps=1, gradient_checkpointing=True,
                                     checkpoint_every=2),
    'defaults every 4th layer': dict(per_device_train_batch_size=GLOBAL, gradient_accumulation_steps=1, gradient_checkpointing=True,
                                     checkpoint_every=4),
    # the same with the pack set by hand instead of the plan's (whose estimate shrank it to 8k tokens at 7B on an H100)
    'every 2nd layer 16k': dict(per_device_train_batch_size=GLOBAL, gradient_accumulation_steps=1, gradient_checkpointing=True,
                                checkpoint_every=2, max_packed_tokens=16384),
    'every 2nd layer 32k': dict(per_device_train_batch_size=GLOBAL, gradient_accumulation_steps=1, gradient_checkpointing=True,
                                checkpoint_every=2, max_packed_tokens=32768),
    # activations offloaded to pinned host memory instead of recomputed (trl's OffloadActivations; checkpointing off)
    'defaults offloading': dict(per_device_train_batch_size=GLOBAL, gradient_accumulation_steps=1, activation_offloading=True),
    PEER: dict(per_device_train_batch_size=GLOBAL, gradient_accumulation_steps=1),   # run by skilled_peer, not sft
    TRL: dict(per_device_train_batch_size=GLOBAL, gradient_accumulation_steps=1),    # run by trl_sft.trl_sft_run
}

# attention first: flash attention's kernels carry cutlass in their names
KINDS = (('attention', ('flash', 'fmha', 'attention', 'flex')), ('matmul', ('gemm', 'nvjet', 'cutlass', 'xmma', 'splitk')),
         ('dropout mask', ('bernoulli', 'philox', 'drop')), ('copies', ('copy', 'catarray', 'memcpy', 'memset')),
         ('reductions', ('reduce',)), ('elementwise', ('elementwise', 'vectorized')),
         ('Triton (Liger, compiled)', ('triton', '_kernel')))   # last: torch's own kernels' names end in _kernel too

def kernel_kinds(prof) -> dict:
    """Self GPU time (ms) of a profile's kernels, summed by kind, from their names (the first kind whose words match; else
    'other'). Only the kernels themselves count: an autograd Function's row (Liger's, LoraLinearFn) also holds, as its own
    device time, the Triton kernels launched inside it, which have rows of their own."""
    import torch
    out = {}
    for e in prof.key_averages():
        if e.device_type != torch.autograd.DeviceType.CUDA: continue
        t = getattr(e, 'self_device_time_total', None)
        if t is None: t = getattr(e, 'self_cuda_time_total', 0)
        if not t: continue
        k = next((kind for kind, words in KINDS if any(w in e.key.lower() for w in words)), 'other')
        out[k] = out.get(k, 0) + t/1e3
    return {k: round(v, 1) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}

def flops(shape, tokens, sum_sq):
    "Useful FLOPs of LoRA training: 4 x (linear params incl. lm_head) per token + causal attention (fwd 2*L^2*width, bwd 2x)."
    width = shape.heads*shape.hd
    per_layer = shape.hidden*(width + 2*shape.kv_heads*shape.hd) + width*shape.hidden + 3*shape.hidden*shape.intermediate
    linear = shape.layers*per_layer + shape.vocab*shape.hidden
    return 4*linear*tokens + 6*shape.layers*width*sum_sq

def skilled_peer(model_dir, enc, steps, callbacks, smoke=False, batch=GLOBAL, accum=1):
    """The skilled peer's run on the encoded rows `enc`: the plain Trainer, peft LoRA (r 8, alpha 32, dropout 0.05, every
    linear layer), DataCollatorWithFlattening, packed-row attention (torch's varlen FlashAttention, registered as
    transformers' 'varlen'), Liger and gradient checkpointing. Returns what the table reads of an sft() result."""
    import torch
    from types import SimpleNamespace
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments, DataCollatorWithFlattening
    from peft import LoraConfig, get_peft_model
    attn = 'sdpa' if smoke else 'varlen'   # smoke: the CPU has no varlen kernel (and sdpa does not keep packed rows apart)
    if attn == 'varlen':
        from swiftnb.core.varlen import register_varlen, varlen_problem
        if (why := varlen_problem(dtype='bfloat16')): raise RuntimeError(f'the skilled peer needs varlen attention: {why}')
        register_varlen()
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32 if smoke else torch.bfloat16,
                                                 attn_implementation=attn)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.05, target_modules='all-linear',
                                             task_type='CAUSAL_LM'))
    targs = TrainingArguments(tempfile.mkdtemp(), max_steps=steps, per_device_train_batch_size=batch,
                              gradient_accumulation_steps=accum, learning_rate=1e-4, warmup_steps=0.05, weight_decay=0.1,
                              bf16=not smoke, use_cpu=smoke, gradient_checkpointing=True,
                              gradient_checkpointing_kwargs=dict(use_reentrant=False), use_liger_kernel=not smoke,
                              logging_steps=1, save_strategy='no', report_to='none', include_num_input_tokens_seen=True,
                              remove_unused_columns=False, seed=42, disable_tqdm=True)
    tr = Trainer(model=model, args=targs, train_dataset=enc.select_columns(['input_ids', 'labels']),
                 data_collator=DataCollatorWithFlattening(return_flash_attn_kwargs=True), callbacks=callbacks)
    tr.train()
    losses = [h['loss'] for h in tr.state.log_history if 'loss' in h]
    return SimpleNamespace(losses=losses, manifest=dict(args=dict(
        packing=True, use_liger=not smoke, gradient_checkpointing=True, attn_impl=attn, per_device_train_batch_size=batch,
        gradient_accumulation_steps=accum, collator='DataCollatorWithFlattening', trainer='transformers.Trainer')))

def trl_row(model_dir, data, steps, callbacks):
    "The same run through trl's SFTTrainer (bench/trl_sft.py), as the table reads an sft() result."
    from types import SimpleNamespace
    from trl_sft import trl_sft_run
    r = trl_sft_run(str(model_dir), data, steps, callbacks, rows_per_step=GLOBAL)
    return SimpleNamespace(losses=r['losses'], manifest=dict(args=dict(
        packing=True, use_liger=r['use_liger'], gradient_checkpointing=True, attn_impl=r['attn_impl'],
        per_device_train_batch_size=GLOBAL, gradient_accumulation_steps=1, trainer=r['trainer'])))

def windows(t, steps, repeat):
    "tokens/s of each of `repeat` timed windows of `steps` - 2 steps, from the (time, tokens seen) at each step's end."
    w = steps - 2
    return [(t[1 + (k + 1)*w][1] - t[1 + k*w][1])/(t[1 + (k + 1)*w][0] - t[1 + k*w][0]) for k in range(repeat)]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--models', default='Qwen2.5-1.5B-Instruct,Qwen2.5-7B-Instruct'); ap.add_argument('--steps', type=int, default=8)
    ap.add_argument('--configs', default='all', help="comma-separated names of CONFIGS, or 'all'")
    ap.add_argument('--out', default='bench/train_speed.json'); ap.add_argument('--profile', default=None, help='a config to profile (step 4)')
    ap.add_argument('--syncs', action='store_true', help="print where step 4 of the profiled config waits for the GPU (torch's sync debug mode)")
    ap.add_argument('--stacks', type=float, default=0, help='print every thread\'s stack each this many seconds of a config (0: never)')
    ap.add_argument('--repeat', type=int, default=1, help='timed windows of (steps - 2) steps per configuration; their median is reported')
    ap.add_argument('--smoke', action='store_true', help='dry run on the CPU with the tiny text model (numbers meaningless)')
    a = ap.parse_args()
    if a.steps < 3: ap.error('--steps must be 3 or more: the first two are warm-up')
    if a.smoke and a.models == ap.get_default('models'): a.models = 'tiny-text'
    total = 2 + a.repeat*(a.steps - 2)   # optimizer steps each configuration trains
    import faulthandler, statistics
    import torch
    from transformers import TrainerCallback
    from swiftnb.core import make_random, make_tiny, model_shape, device_info, load_processor
    from swiftnb.sft import sft
    from swiftnb.data import prepare, load_dataset
    names = list(CONFIGS) if a.configs == 'all' else a.configs.split(',')
    bad = [n for n in names if n not in CONFIGS]
    if bad: ap.error(f"unknown configs {bad}; known: {', '.join(CONFIGS)}")
    data = rows(GLOBAL*total)
    cuda = torch.cuda.is_available() and not a.smoke
    def sync():
        if cuda: torch.cuda.synchronize()
    card = torch.cuda.get_device_name() if cuda else 'cpu (smoke)'; peak_flops = 989e12
    out = dict(date=time.strftime('%Y-%m-%d'), card=card, torch=torch.__version__, command=' '.join(['python'] + sys.argv),
               alloc_conf=os.environ.get('PYTORCH_CUDA_ALLOC_CONF'),
               global_batch=GLOBAL, steps=a.steps, repeat=a.repeat, device=str(device_info()), models={})
    class Clock(TrainerCallback):
        def __init__(self, profile=False): self.t, self.profile, self.prof = [], profile, None
        def on_step_begin(self, args, state, control, **kw):
            if self.profile and state.global_step == 3 and a.syncs:
                import warnings
                self.warned = warnings.catch_warnings(record=True); self.caught = self.warned.__enter__()
                warnings.simplefilter('always'); torch.cuda.set_sync_debug_mode('warn')
            if self.profile and state.global_step == 3:
                self.prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]); self.prof.__enter__()
        def on_train_begin(self, args, state, control, **kw): self.t0 = time.perf_counter()
        def on_step_end(self, args, state, control, **kw):
            sync(); self.t.append((time.perf_counter(), state.num_input_tokens_seen))
            print(f"  step {state.global_step}: {self.t[-1][0] - self.t0:.1f} s since the trainer started, "
                  f"{state.num_input_tokens_seen:,} tokens", flush=True)   # where a slow first step (compilation) shows
            if getattr(self, 'warned', None) is not None:
                torch.cuda.set_sync_debug_mode(0); self.warned.__exit__(None, None, None); self.warned = None
                from collections import Counter
                where = Counter(f"{w.filename}:{w.lineno}" for w in self.caught if 'synchroniz' in str(w.message))
                print(f'GPU syncs in step 4: {sum(where.values())}', *where.most_common(20), sep='\n  ', flush=True)
            if self.prof is not None:
                self.prof.__exit__(None, None, None)
                print(self.prof.key_averages().table(sort_by='self_cuda_time_total', row_limit=45, max_name_column_width=70), flush=True)
                print('GPU time of the profiled step by kind of kernel (ms):', kernel_kinds(self.prof), flush=True); self.prof = None
    for m in a.models.split(','):
        d = make_tiny('text') if m == 'tiny-text' else make_random(m, Path(tempfile.mkdtemp())/'m'); shape = model_shape(str(d))
        enc = prepare(load_dataset(data), load_processor(str(d)), 2048)
        lens = sorted(len(x) for x in enc['input_ids'])
        ratio_sq = sum(l*l for l in lens)/sum(lens)          # sum of len^2 per real token, for the attention FLOPs
        res = out['models'][m] = dict(lengths=dict(rows=len(lens), median=lens[len(lens)//2], mean=sum(lens)/len(lens),
                                                   p99=lens[int(len(lens)*.99)], max=lens[-1]), results={})
        print(m, res['lengths'], flush=True)
        for name in names:
            kw = dict(CONFIGS[name])
            if cuda: torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
            c = Clock(profile=(name == a.profile)); t_call = time.perf_counter()
            if a.stacks: faulthandler.dump_traceback_later(a.stacks, repeat=True)
            try:
                if name == PEER: r = skilled_peer(d, enc, total, [c], a.smoke)
                elif name == TRL: r = trl_row(d, data, total, [c])
                else: r = sft(str(d), data, output_dir=tempfile.mkdtemp(), max_steps=total, learning_rate=1e-4, lora_rank=8, lora_alpha=32,
                              logging_steps=1, save_steps=10**6, report_to='none', dashboard=False, callbacks=[c],
                              **(dict(kw, dtype='float32') if a.smoke else kw))
            except Exception as e:
                res['results'][name] = dict(error=f"{type(e).__name__}: {str(e)[:400]}"); print(name, res['results'][name], flush=True)
                continue
            finally: faulthandler.cancel_dump_traceback_later()
            (t0, n0), (t1, n1) = c.t[1], c.t[-1]
            ws, args = windows(c.t, a.steps, a.repeat), r.manifest['args']
            tps = statistics.median(ws)   # one window without --repeat: the timed steps' tokens/s
            res['results'][name] = dict(tokens_per_s=tps, windows=ws, call_s=time.perf_counter() - t_call, first_step_s=c.t[0][0] - c.t0,
                step_s=(t1 - t0)/(len(c.t) - 2), peak_gib=torch.cuda.max_memory_allocated()/2**30 if cuda else 0.,
                reserved_gib=torch.cuda.max_memory_reserved()/2**30 if cuda else 0., mfu=flops(shape, tps, tps*ratio_sq)/peak_flops,
                first_loss=r.losses[0], losses=r.losses, packing=args['packing'], use_liger=args['use_liger'],
                gradient_checkpointing=args['gradient_checkpointing'], attn_impl=args['attn_impl'],
                batch=args['per_device_train_batch_size'], accum=args['gradient_accumulation_steps'],
                max_packed_tokens=args.get('max_packed_tokens'))
            base = res['results'].get('baseline', {}).get('tokens_per_s')
            print(f"{m} | {name} | {tps:,.0f} tok/s" + (f" (median of {a.repeat}: {', '.join(f'{w:,.0f}' for w in ws)})" if a.repeat > 1 else '')
                  + (f" ({tps/base:.2f}x)" if base else '') +
                  f" | {res['results'][name]['peak_gib']:.1f} GiB | MFU {res['results'][name]['mfu']:.1%} | loss {r.losses[0]:.4f}", flush=True)
            del r; import gc; gc.collect()
            Path(a.out).parent.mkdir(parents=True, exist_ok=True); Path(a.out).write_text(json.dumps(out, indent=1))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True); Path(a.out).write_text(json.dumps(out, indent=1))

if __name__ == '__main__': main()
