"""Packed attention on a GPU, forward + backward: flex attention with a document BlockMask against torch's varlen kernel.

    python bench/attn_speed.py [--packs 4] [--out bench/attn_speed.json]

A pack is 32 chat rows back to back, their token lengths drawn as in train_speed.py's workload (log-normal, median ~324,
sigma 0.75, cut at 2048; seed 0). For Qwen2.5-1.5B's and -7B's attention shapes (query heads, key/value heads, head dim 128),
bf16, each variant runs one layer's causal attention over the pack, forward and backward, and is timed with CUDA events
(median of 10 after 3 warm-ups):
- flex: `flex_attention` compiled, with the document BlockMask built by `create_block_mask` (what transformers does for a
  packed flex_attention model); mask building is timed apart (transformers builds it once per forward, for every layer);
- varlen: swiftnb's `varlen_attention_forward` (what `sft` runs with attn_impl='varlen'), that is torch's FlashAttention
  kernel for packed rows (`torch.nn.attention.varlen.varlen_attn`, given the rows' cumulative lengths), grouped heads by the
  kernel where the installed torch supports it, else by repeating the key/value heads.
The outputs and the gradients of q, k, v are compared with sdpa given the dense block-diagonal mask (the reference).
The first call of each variant is timed too: flex compiles there.
"""
import argparse, json, math, random, sys, time, inspect

SHAPES = {'Qwen2.5-1.5B-Instruct': dict(layers=28, heads=12, kv=2, hd=128), 'Qwen2.5-7B-Instruct': dict(layers=28, heads=28, kv=4, hd=128)}

def lengths(n=32, seed=0, median=324, sigma=0.75, cap=2048):
    rnd = random.Random(seed)
    return [max(16, min(cap, int(rnd.lognormvariate(math.log(median), sigma)))) for _ in range(n)]

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--packs', type=int, default=4); ap.add_argument('--out', default='bench/attn_speed.json')
    a = ap.parse_args()
    import torch
    from torch.nn.attention.flex_attention import flex_attention, create_block_mask
    from swiftnb.core.varlen import varlen_problem, varlen_attention_forward, _varlen_kernel
    varlen = varlen_problem(128, 'bfloat16') is None
    if not varlen: print('no varlen attention here:', varlen_problem(128, 'bfloat16'))
    gqa_ok = varlen and 'enable_gqa' in inspect.signature(_varlen_kernel()).parameters
    dev = 'cuda'; flex = torch.compile(flex_attention)   # as transformers compiles it
    out = dict(date=time.strftime('%Y-%m-%d'), card=torch.cuda.get_device_name(), torch=torch.__version__, command=' '.join(['python'] + sys.argv),
               varlen=varlen, varlen_gqa=gqa_ok, shapes={})

    def timed(fn, n=10, warm=3):
        for _ in range(warm): fn()
        ts = []
        for _ in range(n):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record(); fn(); e.record(); torch.cuda.synchronize(); ts.append(s.elapsed_time(e))
        return sorted(ts)[n//2]

    for name, sh in SHAPES.items():
        res = out['shapes'][name] = dict(sh, packs=[])
        for p in range(a.packs):
            lens = lengths(seed=p); T = sum(lens)
            doc = torch.repeat_interleave(torch.arange(len(lens), device=dev), torch.tensor(lens, device=dev))
            cu = torch.tensor([0] + list(__import__('itertools').accumulate(lens)), device=dev, dtype=torch.int32)
            g = torch.Generator(device=dev).manual_seed(p)
            q = torch.randn(T, sh['heads'], sh['hd'], device=dev, dtype=torch.bfloat16, generator=g)
            k = torch.randn(T, sh['kv'], sh['hd'], device=dev, dtype=torch.bfloat16, generator=g)
            v = torch.randn(T, sh['kv'], sh['hd'], device=dev, dtype=torch.bfloat16, generator=g)
            go = torch.randn(T, sh['heads'], sh['hd'], device=dev, dtype=torch.bfloat16, generator=g)
            rep = sh['heads']//sh['kv']
            def grads(f):
                qq, kk, vv = (t.detach().requires_grad_() for t in (q, k, v))
                o = f(qq, kk, vv); o.backward(go); return o.detach(), qq.grad, kk.grad, vv.grad
            # reference: sdpa, dense mask, in (1, H, T, D)
            mask = ((doc[:, None] == doc[None, :]).tril())[None, None]
            def ref(qq, kk, vv):
                o = torch.nn.functional.scaled_dot_product_attention(qq.transpose(0, 1)[None], kk.repeat_interleave(rep, 1).transpose(0, 1)[None],
                                                                     vv.repeat_interleave(rep, 1).transpose(0, 1)[None], attn_mask=mask)
                return o[0].transpose(0, 1)
            R = grads(ref); del mask
            def mask_mod(b, h, qi, ki): return (doc[qi] == doc[ki]) & (qi >= ki)
            t0 = time.perf_counter(); bm = create_block_mask(mask_mod, None, None, T, T, device=dev); torch.cuda.synchronize()
            row = dict(tokens=T, rows=len(lens), sum_len_sq=sum(l*l for l in lens), block_mask_first_s=time.perf_counter() - t0)
            row['block_mask_ms'] = timed(lambda: create_block_mask(mask_mod, None, None, T, T, device=dev))
            def fx(qq, kk, vv):
                return flex(qq.transpose(0, 1)[None], kk.transpose(0, 1)[None], vv.transpose(0, 1)[None], block_mask=bm, enable_gqa=True)[0].transpose(0, 1)
            variants = {'flex': fx}
            if varlen:
                def vl(qq, kk, vv):
                    return varlen_attention_forward(None, *(t.transpose(0, 1)[None] for t in (qq, kk, vv)), None, scaling=sh['hd']**-.5,
                                                    cu_seq_lens_q=cu, max_length_q=max(lens))[0][0]
                variants['varlen'] = vl
            for vn, f in variants.items():
                try:
                    t0 = time.perf_counter(); G = grads(f); torch.cuda.synchronize(); row[f'{vn}_first_s'] = time.perf_counter() - t0
                    row[f'{vn}_err'] = [float((x.float() - y.float()).abs().max()) for x, y in zip(G, R)]
                    row[f'{vn}_fwd_ms'] = timed(lambda: f(q, k, v))
                    row[f'{vn}_fwdbwd_ms'] = timed(lambda: grads(f))
                except Exception as e: row[f'{vn}_error'] = f"{type(e).__name__}: {str(e)[:300]}"
            res['packs'].append(row); print(name, row, flush=True)
        for vn in ('flex', 'varlen'):
            ms = [r.get(f'{vn}_fwdbwd_ms') for r in res['packs']]
            if all(m is not None for m in ms): res[f'{vn}_step_ms_per_pack'] = sh['layers']*sum(ms)/len(ms)
        print(name, {k: v for k, v in res.items() if k.endswith('per_pack')}, flush=True)
    from pathlib import Path
    Path(a.out).parent.mkdir(parents=True, exist_ok=True); Path(a.out).write_text(json.dumps(out, indent=1))

if __name__ == '__main__': main()
