"""The vLLM engine's streaming before and after issue 31, in one run: the old path (swiftnb at `--old`: vLLM's `LLMEngine`
stepped by hand, the prompt preprocessed by the private `LLM._preprocess_cmpl_one`) against this checkout's (`AsyncLLM.generate`
with delta outputs), both engines loaded side by side in one process, their rounds interleaved.

Run with vLLM's environment (tools/fresh.sh compat builds it), from the repository root:
    PYTHONPATH=$PWD VLLM_CPU_KVCACHE_SPACE=1 .venv-compat/vllm/bin/python bench/vllm_stream.py --old 1743d4a
Measures, per engine: a streamed reply's tokens/s (tokens over the time from the call to its last piece) and time to the
first piece; a batch's wall time through `infer`; and whether the greedy text (streamed and batched) is the same.
Writes bench/vllm_stream.json.
"""
import argparse, importlib.util, json, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KW = dict(dtype='float32', enforce_eager=True, max_model_len=512)   # vLLM on a small CPU, as tests/compat
QS = ['What is the capital of France?', 'Name three colours.', 'Count to ten.', 'Tell me a story about a cat.']

def old_engine_class(rev:str):
    "VllmEngine as swiftnb had it at `rev`, loaded beside this checkout's (its compat helper given back for it)."
    import swiftnb.core.compat as compat
    src = subprocess.run(['git', 'show', f'{rev}:swiftnb/infer/vllm.py'], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    if not hasattr(compat, 'vllm_preprocess'): compat.vllm_preprocess = lambda llm: llm._preprocess_cmpl_one
    spec = importlib.util.spec_from_loader('swiftnb.infer.vllm_old', loader=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = 'swiftnb.infer'
    sys.modules[spec.name] = mod
    exec(compile(src, f'{rev}:swiftnb/infer/vllm.py', 'exec'), mod.__dict__)
    return mod.VllmEngine

def stream(eng, q, n):
    "One streamed reply of exactly n tokens (greedy): text, tokens, seconds to the first and to the last piece."
    t = time.perf_counter(); st = eng.chat(q, stream=True, max_new_tokens=n, min_new_tokens=n)
    pieces, first = [], None
    for p in st:
        first = first or time.perf_counter() - t
        pieces.append(p)
    return ''.join(pieces), st.n_completion, first, time.perf_counter() - t

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--old', default='1743d4a', help='the swiftnb revision with the old path')
    ap.add_argument('--tokens', type=int, default=256)
    ap.add_argument('--rounds', type=int, default=3)
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT/'tests'/'compat'))
    from _tiny import tiny_qwen2_hd64
    from swiftnb.infer.vllm import VllmEngine
    model = tiny_qwen2_hd64(Path(tempfile.mkdtemp())/'tiny')
    engines = {'old': old_engine_class(a.old)(str(model), **KW), 'new': VllmEngine(str(model), **KW)}
    res = {k: dict(tok_s=[], first_s=[], batch_s=[]) for k in engines}
    texts = {k: {} for k in engines}
    for k, e in engines.items():   # warm-up, and the greedy texts: streamed and batched, 64 tokens or the end of turn
        texts[k]['stream'] = [''.join(e.chat(q, stream=True, max_new_tokens=64)) for q in QS]
        texts[k]['batch'] = e.infer(QS, max_new_tokens=64)
    for r in range(a.rounds):
        for k in (('old', 'new') if r % 2 == 0 else ('new', 'old')):
            e = engines[k]
            for q in QS:
                _, n, first, last = stream(e, q, a.tokens)
                assert n == a.tokens, (k, n)
                res[k]['tok_s'].append(n / last); res[k]['first_s'].append(first)
            t = time.perf_counter(); e.infer(QS, max_new_tokens=a.tokens, min_new_tokens=a.tokens)
            res[k]['batch_s'].append(time.perf_counter() - t)
    import vllm, torch, os
    out = dict(vllm=vllm.__version__, torch=torch.__version__, cpus=len(os.sched_getaffinity(0)), tokens=a.tokens, rounds=a.rounds,
               prompts=len(QS), old_rev=a.old,
               same_text=dict(stream=texts['old']['stream'] == texts['new']['stream'],
                              batch=texts['old']['batch'] == texts['new']['batch'],
                              stream_vs_batch=texts['new']['stream'] == texts['new']['batch']),
               **{k: dict(tok_s_median=statistics.median(v['tok_s']), first_s_median=statistics.median(v['first_s']),
                          batch_s_median=statistics.median(v['batch_s']), **v) for k, v in res.items()})
    for k in engines:
        print(f"{k}: streamed {out[k]['tok_s_median']:.1f} tokens/s (median of {len(res[k]['tok_s'])}), first piece "
              f"{out[k]['first_s_median']*1000:.0f} ms, batch of {len(QS)} x {a.tokens} tokens {out[k]['batch_s_median']:.2f} s")
    print('same greedy text:', out['same_text'])
    (ROOT/'bench'/'vllm_stream.json').write_text(json.dumps(out, indent=1))

if __name__ == '__main__': main()
