"""The one-token step's attention alone, compiled, on a GPU: sdpa (cuDNN) against flex attention's split-KV decoding kernel.

    python bench/decode_attention.py [--out bench/decode_attention.json]

Batch 1, Qwen2.5-1.5B's heads (12 query heads, 2 k/v heads, head dim 128), a 512-token static cache of which 300 are seen, bf16.
Each variant is compiled (inductor), captured 28 times (a layer each) in one CUDA graph, and the graph replayed 20 times:
us_per_call is a layer's attention. split_kv says whether inductor used its flex decoding template (many blocks over the cache,
then a reduction) rather than its general flex kernel; err is the largest difference from float32 sdpa. Variants:
- sdpa_cudnn: sdpa with the bool padding mask and its own GQA (what StaticDecoder's step runs, `_sdpa_gqa`);
- flex_rows6: flex attention with the 6 query heads of each k/v head as its rows (flex decoding takes grouped heads only in
  powers of two), the mask applied in score_mod;
- flex_rows8: the same with the rows padded to 8;
- flex_rows6_inputmask: the mask a graph input rather than computed in the graph;
- flex_nomask: no mask at all (the kernel's floor)."""
import argparse, json, time
from pathlib import Path
import torch
from torch.nn.attention.flex_attention import flex_attention
from torch._inductor.utils import run_and_get_code
F = torch.nn.functional

ap = argparse.ArgumentParser(); ap.add_argument('--out', default='bench/decode_attention.json'); a = ap.parse_args()

def timeit(fn, *args, n=28):
    fn(*args); torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(n): fn(*args)
    g.replay(); torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(20): g.replay()
    torch.cuda.synchronize(); return round((time.perf_counter() - t) / 20 / n * 1e6, 2)

B, H, Hk, D, T = 1, 12, 2, 128, 512
q, k, v = (torch.randn(B, h, n, D, device=0, dtype=torch.bfloat16) for h, n in ((H, 1), (Hk, T), (Hk, T)))
m4 = torch.zeros(B, 1, 1, T, dtype=torch.bool, device=0); m4[..., :300] = True
ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=m4, enable_gqa=True)

def sdpa(q, k, v, m4): return F.scaled_dot_product_attention(q, k, v, attn_mask=m4, enable_gqa=True)
def flex_rows(q, k, v, m4, rows=6):
    m = m4[:, 0, 0].contiguous()
    qq = q.reshape(B, Hk, H // Hk, D)
    if rows > H // Hk: qq = torch.cat([qq, qq.new_zeros(B, Hk, rows - H // Hk, D)], 2)
    o = flex_attention(qq, k, v, score_mod=lambda s, b, h, i, j: torch.where(m[b, j], s, float('-inf')))
    return o[:, :, :H // Hk].reshape(B, H, 1, D)
def flex_rows_input_mask(q, k, v, m2):
    o = flex_attention(q.reshape(B, Hk, H // Hk, D), k, v, score_mod=lambda s, b, h, i, j: torch.where(m2[b, j], s, float('-inf')))
    return o.reshape(B, H, 1, D)
def flex_nomask(q, k, v, m4): return flex_attention(q.reshape(B, Hk, H // Hk, D), k, v).reshape(B, H, 1, D)

cases = {'sdpa_cudnn': (sdpa, (q, k, v, m4)), 'flex_rows6': (flex_rows, (q, k, v, m4)),
         'flex_rows8': (lambda *x: flex_rows(*x, rows=8), (q, k, v, m4)),
         'flex_rows6_inputmask': (flex_rows_input_mask, (q, k, v, m4[:, 0, 0].contiguous())), 'flex_nomask': (flex_nomask, (q, k, v, m4))}
res = dict(date=time.strftime('%Y-%m-%d'), card=torch.cuda.get_device_name(), torch=torch.__version__, command='python bench/decode_attention.py', cases={})
for name, (fn, args) in cases.items():
    c = torch.compile(fn, dynamic=False)
    o, code = run_and_get_code(c, *args)
    code = ''.join(code)
    r = dict(split_kv='SPLIT_KV' in code, kernels_in_code=code.count('@triton.jit'), us_per_call=timeit(c, *args))
    if name != 'flex_nomask': r['err'] = (o.float() - ref).abs().max().item()
    res['cases'][name] = r; print(name, r, flush=True)
Path(a.out).write_text(json.dumps(res, indent=1))
