"""Tokens/s of the embedded server (issue 29): 16 clients at once against the same 16 requests one at a time, on one server
(batching on, `max_batch`), and the 16 at once on a second server over the same engine with batching off (`max_batch=1`,
the server before issue 29: one reply at a time). Greedy requests through the official `openai` client; prompts of
different lengths; tokens/s = completion tokens (the server's `usage`) over the wall time of the whole set.
Also checks that each reply is the same text in every mode.

Run from the repository root:
    PYTHONPATH=$PWD python bench/serve_concurrency.py                         # the tiny model (CPU)
    PYTHONPATH=$PWD python bench/serve_concurrency.py --random Qwen2.5-1.5B-Instruct --max_tokens 256   # a real shape
Writes bench/serve_concurrency.json (or --out).
"""
import argparse, json, platform, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

def ask(cl, name, q, n):
    "One greedy non-streamed request: (text, completion tokens)."
    r = cl.chat.completions.create(model=name, messages=[{'role': 'user', 'content': q}], max_tokens=n, temperature=0)
    return r.choices[0].message.content, r.usage.completion_tokens

def run_set(srv, qs, n, together:bool, gap:float=0.):
    """The replies to `qs`, the set's wall seconds and each request's own seconds: all at once (one client thread each;
    with `gap`, client i starts i*gap seconds in, so requests arrive while others are being answered) or one after
    another."""
    cl = srv.client(timeout=3600)
    t = time.perf_counter()
    def timed(i):
        time.sleep(max(0., t + i * gap - time.perf_counter()))
        t0 = time.perf_counter()
        return ask(cl, srv.name, qs[i], n), time.perf_counter() - t0
    if together:
        with ThreadPoolExecutor(len(qs)) as ex: got = list(ex.map(timed, range(len(qs))))
    else: got = [timed(i) for i in range(len(qs))]
    return [o for o, _ in got], time.perf_counter() - t, [w for _, w in got]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', default='tiny-text', help='a model folder or registry name')
    ap.add_argument('--random', default=None, help="a registered model's shape with random weights (make_random)")
    ap.add_argument('--clients', type=int, default=16)
    ap.add_argument('--max_tokens', type=int, default=128)
    ap.add_argument('--max_batch', type=int, default=16)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--fast', default=None, choices=['true', 'false'], help="the engine's fast= (default: a GPU's decoder)")
    ap.add_argument('--gap', type=float, default=0.05, help='seconds between arrivals in the staggered modes')
    ap.add_argument('--out', default=str(Path(__file__).with_name('serve_concurrency.json')))
    a = ap.parse_args()
    import torch, transformers
    from swiftnb.infer import Infer
    from swiftnb.serve import serve
    from swiftnb.infer.hf import Batcher
    if a.random:
        from swiftnb.core.tiny import make_random
        a.model = str(make_random(a.random))
    eng = Infer.from_pretrained(a.model, **({} if a.fast is None else {'fast': a.fast == 'true'}))
    qs = [f"Question {i}: " + 'tell me more about that, ' * (1 + 3 * (i % 5)) for i in range(a.clients)]
    res = {'model': a.random or a.model, 'device': str(eng.model.device), 'clients': a.clients, 'fast': a.fast, 'gap': a.gap,
           'max_tokens': a.max_tokens, 'max_batch': a.max_batch, 'torch': torch.__version__,
           'transformers': transformers.__version__, 'machine': platform.processor() or platform.machine(),
           'threads': torch.get_num_threads(), 'rounds': []}
    with serve(eng, backend='transformers', port=0, max_batch=a.max_batch) as on, \
         serve(eng, backend='transformers', port=0, max_batch=1) as off:
        run_set(on, qs[:2], 4, True)   # warm-up
        texts = {}
        for r in range(a.rounds):
            row = {}
            for mode, srv, together, gap, join in (
                    ('one_at_a_time', on, False, 0, True), ('concurrent_batched', on, True, 0, True),
                    ('concurrent_unbatched', off, True, 0, True),
                    # arrivals spread out: joining running batches (the fast decoder, a GPU's default) or not
                    ('staggered_joining', on, True, a.gap, True), ('staggered_not_joining', on, True, a.gap, False)):
                Batcher.join = join
                out, s, lat = run_set(srv, qs, a.max_tokens, together, gap)
                toks = sum(k for _, k in out)
                row[mode] = {'seconds': round(s, 3), 'tokens': toks, 'tok_s': round(toks / s, 1),
                             'mean_request_s': round(sum(lat) / len(lat), 3)}
                texts.setdefault(mode, [t for t, _ in out])
                print(f"round {r} {mode:22s} {toks:6d} tokens in {s:7.2f} s: {toks / s:8.1f} tokens/s, "
                      f"{row[mode]['mean_request_s']:.3f} s a request", flush=True)
            row['batches'] = list(on.state['batches'][-20:])
            Batcher.join = True
            res['rounds'].append(row)
    base = texts['one_at_a_time']
    res['same_text'] = {m: sum(x == y for x, y in zip(t, base)) for m, t in texts.items()}
    best = {m: max(r[m]['tok_s'] for r in res['rounds']) for m in texts}
    res['best_tok_s'], res['speedup_vs_one_at_a_time'] = best, round(best['concurrent_batched'] / best['one_at_a_time'], 2)
    print(json.dumps({k: res[k] for k in ('best_tok_s', 'speedup_vs_one_at_a_time', 'same_text')}))
    Path(a.out).write_text(json.dumps(res, indent=1) + '\n')

if __name__ == '__main__': main()
