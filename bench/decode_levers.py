"""Batch-1 decode levers of `StaticDecoder`, one by one, same call, same card: what each does to a token's time and kernel count.

    python bench/decode_levers.py [--model Qwen2.5-1.5B-Instruct] [--batch 1] [--out bench/decode_levers.json]

Random weights of the model's shape, bf16, sdpa, 128 prompt tokens, 256 new, greedy (no end token). Variants:
- nofuse: StaticDecoder(fuse=False, gqa=False), the decoder as first measured;
- fuse: q/k/v and gate/up as one matmul each;
- fuse+cdt: and inductor's coordinate-descent tuning of its Triton kernels;
- fuse+gqa: and sdpa's own grouped-query attention instead of repeating k and v (the default since; the 2026-11-28 runs
  switched it with TRANSFORMERS_SDPA_FORCE_GQA=1, which issues the same sdpa call as the decoder's `_sdpa_gqa` now does);
- +nocudnn: with PyTorch's cuDNN attention off (sdpa then picks another kernel);
- +at: inductor's max-autotune of the matmuls (it times Triton templates against cuBLAS for each shape and keeps the faster);
- +combo: inductor's combo kernels (independent small kernels of the step launched as one);
- +gemv: every matmul of the step decomposed by inductor into a multiply and a sum (its decompose_mm pass, with the size limits
  lifted), so that at batch 1 each becomes a Triton reduction kernel reading the weight once, fused with its neighbours
  (the norm before, the activation or residual after) instead of a cuBLAS call;
- +fmask: the padding mask made once a step as a float bias (transformers' eager mask) instead of sdpa's bool mask, which
  sdpa's cuDNN path turns into a bias again in every layer;
- +gemv2k: the same for the small matmuls only, those whose weight is under 2049 on both sides (q/k/v and o_proj on the 1.5B
  shape; cuBLAS gives each of these few blocks at batch 1), the MLP's and the output layer's staying with cuBLAS;
- +lt: cuBLASLt instead of cuBLAS for every matmul (`torch.backends.cuda.preferred_blas_library('cublaslt')`), whose
  heuristics pick other kernels (split-K among them) for a single row;
- +g8: eight tokens a CUDA graph replay instead of one (`_MultiToken`, here only): what the replays' launches and the host's
  loop cost a token (the last replay makes up to 7 tokens more than asked, which counts against it);
- plain: `model.generate` (dynamic cache), for the ratio.
For each: ms per token (mean of 3 calls after a warm-up that compiles), and from torch.profiler over 4 uncaptured compiled steps
the kernels per token, the GPU's busy time per token and the kernels that take most of it. Tokens are compared with nofuse's."""
import argparse, contextlib, json, time
from collections import Counter
from pathlib import Path
import torch
from transformers import AutoModelForCausalLM
from swiftnb.core import make_random
from swiftnb.infer import StaticDecoder

ap = argparse.ArgumentParser()
ap.add_argument('--model', default='Qwen2.5-1.5B-Instruct'); ap.add_argument('--out', default='bench/decode_levers.json')
ap.add_argument('--batch', type=int, default=1); ap.add_argument('--new', type=int, default=256); ap.add_argument('--prompt', type=int, default=128)
ap.add_argument('--variants', default='nofuse,fuse,fuse+cdt,fuse+gqa')
a = ap.parse_args()
path = make_random(a.model, dtype='bfloat16')
m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, attn_implementation='sdpa', device_map={'': 0}).eval()
m.generation_config.eos_token_id = None   # every variant makes all the new tokens
ids = torch.randint(10, m.config.vocab_size - 10, (a.batch, a.prompt), generator=torch.Generator().manual_seed(0)).cuda()
am = torch.ones_like(ids)
res = dict(date=time.strftime('%Y-%m-%d'), model=a.model, card=torch.cuda.get_device_name(), torch=torch.__version__, batch=a.batch,
           prompt=a.prompt, new=a.new, command=' '.join(['python bench/decode_levers.py'] + [f'--{k} {v}' for k, v in vars(a).items() if k != 'out']), variants=[])

def profile(dec, n=4):
    "Kernels and GPU time of n uncaptured (compiled) steps on the slot the last call used."
    s = next(reversed(dec._slots.values()))
    for _ in range(2): dec._advance(s)
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as p:
        for _ in range(n): dec._advance(s)
        torch.cuda.synchronize()
    ks = [e for e in p.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    t = Counter()
    for e in ks: t[e.name[:60]] += e.device_time / n
    c = Counter(e.name[:60] for e in ks)
    return dict(kernels_per_token=round(len(ks) / n, 1), gpu_busy_us_per_token=round(sum(t.values()), 1),
                top=[(k, round(v, 1), c[k] // n) for k, v in t.most_common(12)])

@contextlib.contextmanager
def gemv(limit):
    "inductor's decompose_mm pass for the step's matmuls whose weight is under `limit` on both sides (None: off), while compiling."
    if not limit: yield; return
    import torch._inductor.fx_passes.decompose_mem_bound_mm as D
    old = D.min_first_dimension_decomposition, D.max_other_dimension_decomposition
    D.min_first_dimension_decomposition, D.max_other_dimension_decomposition = 1, limit
    try:
        with torch._inductor.config.patch(post_grad_fusion_options={'decompose_mm_pass': {}}): yield
    finally: D.min_first_dimension_decomposition, D.max_other_dimension_decomposition = old

@contextlib.contextmanager
def fmask(on:bool):
    "The decoder's attention given transformers' float mask (0 or the dtype's minimum) instead of sdpa's bool mask."
    if not on: yield; return
    import swiftnb.infer.decoder as I   # where the decoder looks them up
    from transformers.masking_utils import AttentionMaskInterface, eager_mask
    old = I._register_gqa
    def reg(): old(); AttentionMaskInterface.register(I._GQA, eager_mask)
    I._register_gqa = reg
    try: yield
    finally: I._register_gqa = old

@contextlib.contextmanager
def blas(lib):
    "torch's BLAS library for the matmuls while the step compiles and is captured (None: as it is)."
    if not lib: yield; return
    old = torch.backends.cuda.preferred_blas_library()
    torch.backends.cuda.preferred_blas_library(lib)
    try: yield
    finally: torch.backends.cuda.preferred_blas_library(old)

class _MultiToken(StaticDecoder):
    "k tokens a graph replay: the first call of a shape warms up (one token) and captures k steps; then every k-th call replays them."
    def __init__(self, *args, k=8, **kw): super().__init__(*args, **kw); self.k, self._fresh = k, True
    def __call__(self, *args, **kw): self._fresh = True; return super().__call__(*args, **kw)
    def _run_step(self, s):
        if self._fresh: s.calls, self._fresh = 0, False   # a new call: its first step replays
        if s.graph is None:
            side = torch.cuda.Stream(); side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side): self._advance(s)
            torch.cuda.current_stream().wait_stream(side)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g, capture_error_mode='thread_local'):
                for _ in range(self.k): self._advance(s)
            s.graph, s.calls = g, 0
            return
        if s.calls % self.k == 0: s.graph.replay()   # the tokens of the next k calls; the loop's syncs only read them
        s.calls += 1

if any('g8' in v.split('+') for v in a.variants.split(',')) and a.prompt + a.new + 7 > max(256, 1 << (a.prompt + a.new - 1).bit_length()):
    ap.error('g8 makes up to 7 tokens past --new, and the cache (a power of two) has no room for them: lower --new or --prompt')
ref = None
with torch.inference_mode():
    for v in a.variants.split(','):
        if v == 'plain':
            g = lambda: m.generate(ids, attention_mask=am, max_new_tokens=a.new, do_sample=False, pad_token_id=0, eos_token_id=None)
            g(); torch.cuda.synchronize(); t = time.perf_counter()
            for _ in range(3): g()
            torch.cuda.synchronize(); dt = (time.perf_counter() - t) / 3
            r = dict(variant=v, ms_per_token=round(1000 * dt / a.new, 3), tok_s=round(a.batch * a.new / dt, 1))
            res['variants'].append(r); print(json.dumps(r), flush=True); continue
        torch._dynamo.reset()
        torch.backends.cuda.enable_cudnn_sdp('nocudnn' not in v)
        vs = v.split('+')
        dec = (_MultiToken if 'g8' in vs else StaticDecoder)(m, fuse='fuse' in vs, gqa='gqa' in vs)
        with blas('cublaslt' if 'lt' in vs else None), fmask('fmask' in vs), torch._inductor.config.patch(coordinate_descent_tuning='cdt' in vs, max_autotune_gemm='at' in vs, combo_kernels='combo' in vs), gemv(10**7 if 'gemv' in vs else 2049 if 'gemv2k' in vs else None):
            t = time.perf_counter()
            try: out = dec(ids, am, a.new, [], 0); torch.cuda.synchronize()
            except Exception as e:   # one variant's failure is recorded; the others still run
                r = dict(variant=v, error=f"{type(e).__name__}: {str(e)[:500]}"); res['variants'].append(r); print(json.dumps(r), flush=True)
                Path(a.out).write_text(json.dumps(res, indent=1)); del dec; torch.cuda.empty_cache(); continue
            first = time.perf_counter() - t
            t = time.perf_counter()
            for _ in range(3): out = dec(ids, am, a.new, [], 0)
            torch.cuda.synchronize(); dt = (time.perf_counter() - t) / 3
            r = dict(variant=v, ms_per_token=round(1000 * dt / a.new, 3), tok_s=round(a.batch * a.new / dt, 1), first_call_s=round(first, 1))
            try: r.update(profile(dec))
            except Exception as e: r['profile_error'] = f"{type(e).__name__}: {e}"
        if ref is None: ref = out
        r['same_tokens_as_first'] = (out == ref).float().mean().item()
        res['variants'].append(r); print(json.dumps(r), flush=True)
        Path(a.out).write_text(json.dumps(res, indent=1))
        del dec; torch.cuda.empty_cache()
