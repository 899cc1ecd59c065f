#!/usr/bin/env python
"""Benchmark: `swiftnb.data.prepare` vs trl's SFTTrainer dataset preparation on 10,000 text chat rows (CPU).

    python bench/data_prepare.py

Both contenders get the same 10,000 canonical chat rows (generated here, seeded), the same tiny Qwen tokenizer
(`swiftnb.core.make_tiny('text')` loaded with `swiftnb.core.load_processor`) and max_length=2048, with
`num_proc` / `dataset_num_proc` None and 2. Each (contender, num_proc, repeat) runs in a fresh subprocess; the best
of 2 repeats is reported. Memory: the child's kernel high-water marks (`getrusage` RUSAGE_SELF / RUSAGE_CHILDREN,
taken right after the timed call) plus the parent sampling the child's whole process tree (RSS every 50 ms and PSS
every 0.5 s, summed over the child and its `datasets` worker processes). The outputs of both are compared row by row.

Writes bench/data_prepare.md (the report) and bench/data_prepare.json (raw numbers).
"""
from __future__ import annotations
import argparse, collections, datetime, gc, json, math, os, pickle, platform, random, resource, subprocess, sys, tempfile, time
from pathlib import Path

N_ROWS, SEED, MAX_LENGTH, REPEATS, NUM_PROCS = 10_000, 0, 2048, 2, (None, 2)
HERE = Path(__file__).resolve().parent
SAMPLE_S = 0.05

# ----------------------------------------------------------------------------------------------------------- rows
_WORDS = """the of and to a in is it that for you was on with as are be this have from or by not but at one all they
we can which there an your their if more will when so about what some out up into them would other time than then
these its like only two may could people first been way made over very after also most many well where much through
back years good new just any should because each those same how even work used still must here part take make while
between under both world great three does another never little long number since without place right year own might
system data model value function example point process result order problem change case need information use form set
following different small large important possible general often however usually common simple based given state
support second level cases end line code file output input method type test memory error training step rate size list
question answer answers reason reasons idea ideas approach difference better best quickly carefully clearly exactly
usually directly above below within across during before against around among along whether though although rather
instead every either neither several few enough less least short high low early late easy hard true false open close
run read write build check find keep start stop try show explain describe compare consider choose improve reduce
increase measure learn teach study understand remember think believe know mean seem feel help want give get go see
look come play move live believe hold bring happen provide include continue allow lead stand lose pay meet create
water food city house school student teacher book story family friend child children money market price company
business service health doctor patient body energy power light sound color music art science history language word
words sentence paper letter table chart map road car train plane trip travel weather season summer winter spring
morning evening night today tomorrow week month plan project team meeting report design plant tree garden animal
dog cat bird fish river lake mountain ocean island forest field village country government law policy rule""".split()
_CAPS = ['Python', 'Paris', 'London', 'Europe', 'Monday', 'March', 'Linux', 'English', 'Spanish', 'Earth', 'Mars']
_Q_START = ['How do I', 'What is the best way to', 'Can you explain how to', 'Why does', 'What happens if I', 'Could you help me',
            'Is it possible to', 'What are the main reasons to', 'Please describe how to', 'When should I']
_SYSTEMS = ['You are a helpful assistant.', 'You are a concise assistant. Answer in plain English.',
            'You are an expert tutor who explains things step by step.', 'You are a friendly travel guide.']


def _weights(n):
    "Zipf-like word frequencies (s=0.8: 'the' is ~8% of words), so common words dominate as in real text."
    return [1 / (r + 1) ** 0.8 for r in range(n)]


def _sentence(rng, k, cum):
    w = rng.choices(_WORDS, cum_weights=cum, k=k)
    for i in range(1, k):
        x = rng.random()
        if x < 0.03: w[i] = rng.choice(_CAPS)
        elif x < 0.05: w[i] = str(rng.randint(2, 2024))
        elif x < 0.10 and i < k - 1: w[i] += ','
    w[0] = w[0].capitalize()
    return ' '.join(w)


def _text(rng, n_words, cum, question=False):
    "About n_words of English-like text: sentences of 4-22 words; longer answers get paragraphs and sometimes a list."
    out, left, para = [], n_words, []
    while left > 0:
        k = min(left, rng.randint(4, 22))
        left -= k
        if not question and n_words > 80 and rng.random() < 0.08:        # a short bulleted list, as its own paragraph
            if para: out.append(' '.join(para)); para = []
            out.append('\n'.join('- ' + _sentence(rng, rng.randint(3, 8), cum) for _ in range(rng.randint(2, 4))))
            continue
        para.append(_sentence(rng, k, cum) + rng.choices('.?!', (0.9, 0.05, 0.05))[0])
        if not question and len(para) >= rng.randint(3, 6) and left > 0:
            out.append(' '.join(para)); para = []
    if para: out.append(' '.join(para))
    s = '\n\n'.join(out)
    if question:
        s = rng.choice(_Q_START) + ' ' + s[0].lower() + s[1:]
        s = s.rstrip('.!?') + '?'
    return s


def make_rows(n=N_ROWS, seed=SEED):
    "n canonical chat rows: 1-3 user/assistant turns (a system prompt in 30%), questions ~20 words, answers ~60 words (median)."
    rng, cum = random.Random(seed), list(__import__('itertools').accumulate(_weights(len(_WORDS))))
    rows = []
    for _ in range(n):
        msgs = []
        if rng.random() < 0.3:
            msgs.append({'role': 'system', 'content': rng.choice(_SYSTEMS) if rng.random() < 0.6 else
                         _text(rng, max(5, round(rng.lognormvariate(math.log(25), 0.4))), cum)})
        for _ in range(rng.choices((1, 2, 3), (0.5, 0.3, 0.2))[0]):
            msgs.append({'role': 'user', 'content': _text(rng, max(3, round(rng.lognormvariate(math.log(20), 0.5))), cum, question=True)})
            msgs.append({'role': 'assistant', 'content': _text(rng, max(1, round(rng.lognormvariate(math.log(60), 0.8))), cum)})
        rows.append({'messages': msgs})
    return rows


# ---------------------------------------------------------------------------------------------------------- child
def child(a):
    "One timed run in a fresh process; writes a JSON result (and, with --dump, the encoded rows)."
    import psutil, datasets
    datasets.disable_caching(); datasets.disable_progress_bars()
    from swiftnb.core import make_tiny, load_processor
    path = make_tiny('text')
    tok = load_processor(path, 'text')
    ds = datasets.Dataset.from_list(make_rows())
    num_proc = a.num_proc or None
    extra = {}
    if a.contender == 'swiftnb':
        import swiftnb.data as sd
        run = lambda: sd.prepare(ds, tok, max_length=MAX_LENGTH, num_proc=num_proc)
    else:
        from transformers import AutoModelForCausalLM
        from trl import SFTConfig, SFTTrainer
        model = AutoModelForCausalLM.from_pretrained(path)
        cfg = SFTConfig(output_dir=tempfile.mkdtemp(prefix='trl-bench-'), max_length=MAX_LENGTH, assistant_only_loss=True,
                        dataset_num_proc=num_proc, report_to='none', save_strategy='no', logging_strategy='no',
                        bf16=False, use_cpu=True)   # CPU machine: trl defaults to bf16
        t = time.perf_counter()
        # The constructor runs every per-trainer check (conversational dataset, generation markers -> trl's Qwen2.5 training
        # template, stop-token check, pad token) and prepares this 16-row dataset; the timed call below is the same
        # `self._prepare_dataset(train_dataset, processing_class, args, args.packing, formatting_func, "train")` it makes.
        trainer = SFTTrainer(model=model, args=cfg, train_dataset=ds.select(range(16)), processing_class=tok)
        extra['trainer_init_s'] = time.perf_counter() - t
        extra['training_template_swapped'] = trainer.chat_template is not None
        head = trainer.train_dataset
        run = lambda: trainer._prepare_dataset(ds, tok, cfg, cfg.packing, None, 'train')
    gc.collect()
    me = psutil.Process()
    rss0, ru0 = me.memory_info().rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    cpu = lambda: sum(x.ru_utime + x.ru_stime for x in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))
    cpu0 = cpu()
    w0, t0 = time.time(), time.perf_counter()
    out = run()
    t1, w1 = time.perf_counter(), time.time()
    ru_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024      # Linux: KiB
    ru_kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # the largest joined worker
    extra['prep_cpu_s'] = cpu() - cpu0   # CPU seconds of the call, workers included
    res = dict(contender=a.contender, num_proc=num_proc, seconds=t1 - t0, wall_start=w0, wall_end=w1, rss_before=rss0,
               maxrss_before=ru0, ru_maxrss_self=ru_self, ru_maxrss_children=ru_kids, rows_out=len(out), columns=out.column_names, **extra)
    if a.contender == 'swiftnb':
        res['truncated_rows'] = len(sd.last_prepare_report.truncated)
    else:   # the directly timed call must give what the constructor gives
        res['same_as_constructor_on_first_16'] = (head['input_ids'] == out['input_ids'][:16] and head['labels'] == out['labels'][:16])
    if a.dump:
        with open(a.dump, 'wb') as f: pickle.dump(dict(input_ids=out['input_ids'], labels=out['labels']), f, protocol=5)
    Path(a.result).write_text(json.dumps(res))
    if a.contender == 'trl': __import__('shutil').rmtree(cfg.output_dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------------------- parent
class _Sampler:
    """Memory of a process tree (the child and its `datasets` workers): RSS summed over the tree every SAMPLE_S (cheap),
    PSS (shared pages split between the processes that map them) every PSS_S (reads smaps_rollup: ~2 ms a process);
    the process list is refreshed every LIST_S. Kept light, as it shares the 2 cores with the benchmark."""
    LIST_S, PSS_S = 0.25, 0.5
    def __init__(self, pid):
        import psutil
        self.psutil, self.root, self.procs, self.t_list, self.t_pss, self.series = psutil, psutil.Process(pid), [], 0, 0, []
    def __call__(self):
        ps, now = self.psutil, time.time()
        if now - self.t_list >= self.LIST_S:
            try: self.procs = [self.root] + self.root.children(recursive=True)
            except ps.Error: return
            self.t_list = now
        pss = now - self.t_pss >= self.PSS_S
        rss = tot_pss = 0
        for p in self.procs:
            try:
                if pss: m = p.memory_full_info(); tot_pss += m.pss
                else: m = p.memory_info()
                rss += m.rss
            except ps.Error: pass
        if pss: self.t_pss = now
        self.series.append((now, rss, tot_pss if pss else None))


def _busy():
    "System-wide busy CPU seconds so far (all cores)."
    import psutil
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, 'iowait', 0)


def run_child(contender, num_proc, rep, tmp, env, dump=None):
    result = tmp / f'{contender}-{num_proc}-{rep}.json'
    cmd = [sys.executable, __file__, '--child', contender, '--num-proc', str(num_proc or 0), '--result', str(result)]
    if dump: cmd += ['--dump', str(dump)]
    logf = open(tmp / f'{contender}-{num_proc}-{rep}.log', 'w+')
    p = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, text=True)
    kids = lambda: (lambda x: x.ru_utime + x.ru_stime)(resource.getrusage(resource.RUSAGE_CHILDREN))
    smp, b0, me0, k0, w0 = _Sampler(p.pid), _busy(), sum(os.times()[:2]), kids(), time.time()
    while p.poll() is None:
        smp()
        time.sleep(SAMPLE_S)
    logf.seek(0); log = logf.read(); logf.close()
    series = smp.series
    if p.returncode: raise SystemExit(f"child {cmd} failed ({p.returncode}):\n{log}")
    r = json.loads(result.read_text())
    win = [s for s in series if r['wall_start'] <= s[0] <= r['wall_end']]
    r['tree_rss_peak'] = max((s[1] for s in win), default=None)
    r['tree_pss_peak'] = max((s[2] for s in win if s[2] is not None), default=None)
    # CPU used by processes other than this benchmark while the child ran (another job on the machine slows both contenders)
    wall, busy, mine = time.time() - w0, _busy() - b0, (sum(os.times()[:2]) - me0) + (kids() - k0)
    r['other_load_cores'] = max(0.0, busy - mine) / wall
    r['samples_in_window'] = len(win)
    r['log_tail'] = log[-2000:]
    return r


def compare(tok, a, b):
    "Row-by-row comparison of two dumps (a = swiftnb, b = trl): input_ids, labels, and how labels differ."
    out = dict(rows=len(a['input_ids']), same_rows=len(a['input_ids']) == len(b['input_ids']))
    ids_diff = [i for i, (x, y) in enumerate(zip(a['input_ids'], b['input_ids'])) if x != y]
    lab_diff = [i for i, (x, y) in enumerate(zip(a['labels'], b['labels'])) if x != y]
    only_b, only_a = collections.Counter(), collections.Counter()   # tokens trained by one side only, decoded
    ctx_b = collections.Counter()                                   # ...and what precedes them
    for i in lab_diff:
        if i in ids_diff: continue
        ids = a['input_ids'][i]
        for j, (x, y) in enumerate(zip(a['labels'][i], b['labels'][i])):
            if x == -100 and y != -100:
                only_b[tok.decode([ids[j]])] += 1; ctx_b[tok.decode(ids[max(0, j - 1):j])] += 1
            elif y == -100 and x != -100: only_a[tok.decode([ids[j]])] += 1
    n_turns_total = sum(sum(1 for l, pl in zip(r, [-100] + r[:-1]) if l != -100 and pl == -100) for r in a['labels'])
    out.update(input_ids_differ=len(ids_diff), labels_differ=len(lab_diff), first_ids_diff=ids_diff[:5], first_label_diff=lab_diff[:5],
               trained_tokens_a=sum(sum(l != -100 for l in r) for r in a['labels']),
               trained_tokens_b=sum(sum(l != -100 for l in r) for r in b['labels']),
               total_tokens=sum(map(len, a['input_ids'])), trained_runs_a=n_turns_total,
               only_b=dict(only_b.most_common(10)), only_b_preceded_by=dict(ctx_b.most_common(10)), only_a=dict(only_a.most_common(10)))
    return out


def show(tok, ids, labels):
    "The row as text with trained tokens in [[...]]."
    s, on = '', False
    for t, l in zip(ids, labels):
        if (l != -100) != on: s += '[[' if not on else ']]'; on = not on
        s += tok.decode([t])
    return s + (']]' if on else '')


def _code_sha():
    "sha256 (12 hex) of the swiftnb.data package without nbdev's `# %%` cell-marker lines: the code under test."
    import hashlib, swiftnb
    src = ''.join(p.read_text() for p in sorted((Path(swiftnb.__file__).parent / 'data').glob('*.py')))
    return hashlib.sha256(''.join(l for l in src.splitlines(True) if not l.startswith('# %%')).encode()).hexdigest()[:12]


def versions():
    import importlib.metadata as md
    v = {k: md.version(k) for k in ('swiftnb', 'trl', 'transformers', 'datasets', 'tokenizers', 'torch', 'accelerate', 'psutil')}
    v['python'] = platform.python_version()
    v['swiftnb/data.py code sha256'] = _code_sha()
    try:
        v['swiftnb_git'] = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=HERE.parent, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--', 'swiftnb'], cwd=HERE.parent, capture_output=True, text=True).stdout.strip()
        v['swiftnb_git'] += ' (swiftnb/ modified)' if dirty else ''
    except OSError: pass
    return v


def machine():
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor())
    mem = next((int(l.split()[1]) * 1024 for l in open('/proc/meminfo') if l.startswith('MemTotal')), 0)
    return dict(cpus=os.cpu_count(), affinity=len(os.sched_getaffinity(0)), cpu=cpu, mem_gib=round(mem / 2**30, 1),
                os=platform.platform())


MiB = lambda b: f"{b / 2**20:,.0f}" if b else 'n/a'


def other_load(seconds=2.0):
    "Cores' worth of CPU used by other processes over `seconds` (this process idles meanwhile)."
    b0, t0 = _busy(), time.time()
    time.sleep(seconds)
    return (_busy() - b0) / (time.time() - t0)


def wait_quiet(limit):
    "Wait up to `limit` s for other jobs on the machine to stop using CPU (they would slow both contenders)."
    t0 = time.time()
    while (load := other_load()) > 0.25 and time.time() - t0 < limit:
        print(f"other processes use {load:.2f} cores; waiting for a quiet machine...", flush=True)
        time.sleep(8)
    return time.time() - t0, load


def parent(a):
    import statistics
    env = dict(os.environ, TOKENIZERS_PARALLELISM='false', PYTHONWARNINGS='ignore', TRANSFORMERS_VERBOSITY='error')
    own_cache = 'SWIFTNB_CACHE' not in os.environ
    cache = Path(tempfile.mkdtemp(prefix='swiftnb-bench-cache-')) if own_cache else Path(os.environ['SWIFTNB_CACHE'])
    env['SWIFTNB_CACHE'] = str(cache)
    os.environ['SWIFTNB_CACHE'] = str(cache)
    from swiftnb.core import make_tiny, load_processor
    path = make_tiny('text')           # built once, before the timed children
    tok = load_processor(path, 'text')
    rows = make_rows()
    qw = [len(m['content'].split()) for r in rows for m in r['messages'] if m['role'] == 'user']
    aw = [len(m['content'].split()) for r in rows for m in r['messages'] if m['role'] == 'assistant']
    data = dict(rows=len(rows), turns=collections.Counter(sum(m['role'] == 'assistant' for m in r['messages']) for r in rows),
                system=sum(r['messages'][0]['role'] == 'system' for r in rows),
                q_words_median=statistics.median(qw), a_words_median=statistics.median(aw), a_words_p99=sorted(aw)[int(.99 * len(aw))],
                a_words_max=max(aw))
    tmp = Path(tempfile.mkdtemp(prefix='swiftnb-bench-'))
    waited, load0 = wait_quiet(a.wait)
    runs, dumps = [], {}
    t_all = time.time()
    for rep in range(REPEATS):
        for num_proc in NUM_PROCS:
            for contender in ('swiftnb', 'trl'):   # interleaved, so drift hits both alike
                dump = tmp / f'{contender}-{num_proc}.pkl' if rep == 0 else None
                r = run_child(contender, num_proc, rep, tmp, env, dump)
                r['rep'] = rep
                if dump: dumps[contender, num_proc] = dump
                runs.append(r)
                print(f"rep {rep} {contender:7s} num_proc={num_proc}: {r['seconds']:.2f}s  {N_ROWS / r['seconds']:,.0f} rows/s  "
                      f"tree RSS peak {MiB(r['tree_rss_peak'])} MiB (before {MiB(r['rss_before'])})", flush=True)
    load = lambda p: pickle.loads(Path(p).read_bytes())
    cmp_ = {}
    for num_proc in NUM_PROCS:
        cmp_[f'swiftnb vs trl, num_proc={num_proc}'] = compare(tok, load(dumps['swiftnb', num_proc]), load(dumps['trl', num_proc]))
    for c in ('swiftnb', 'trl'):
        x, y = load(dumps[c, None]), load(dumps[c, 2])
        cmp_[f'{c}: num_proc=None vs 2'] = dict(identical=x == y)
    # an example row: the shortest two-turn one
    sw, tr = load(dumps['swiftnb', None]), load(dumps['trl', None])
    two = [i for i, r in enumerate(rows) if sum(m['role'] == 'assistant' for m in r['messages']) == 2]
    ex = min(two, key=lambda i: len(sw['input_ids'][i]))
    example = dict(row=ex, messages=rows[ex]['messages'], swiftnb=show(tok, sw['input_ids'][ex], sw['labels'][ex]),
                   trl=show(tok, tr['input_ids'][ex], tr['labels'][ex]),
                   diff=[(j, tok.decode([t]), s, u) for j, (t, s, u) in enumerate(zip(sw['input_ids'][ex], sw['labels'][ex], tr['labels'][ex])) if s != u])
    res = dict(date=datetime.datetime.now().astimezone().isoformat(timespec='seconds'), command=a.command, machine=machine(),
               versions=versions(), data=data, max_length=MAX_LENGTH, repeats=REPEATS, runs=runs, compare=cmp_, example=example,
               total_s=time.time() - t_all, waited_s=waited, other_load_at_start=load0, code_sha_at_end=_code_sha())
    (HERE / 'data_prepare.json').write_text(json.dumps(res, indent=1, default=str))
    (HERE / 'data_prepare.md').write_text(report(res))
    print((HERE / 'data_prepare.md').read_text())
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    if own_cache: shutil.rmtree(cache, ignore_errors=True)


def report(r):
    best = {}
    for x in r['runs']:
        k = (x['contender'], x['num_proc'])
        if k not in best or x['seconds'] < best[k]['seconds']: best[k] = x
    m, v, d = r['machine'], r['versions'], r['data']
    tok_total = r['compare']['swiftnb vs trl, num_proc=None']['total_tokens']
    turns = ', '.join(f"{k}: {n:,}" for k, n in sorted(d['turns'].items()))
    L = [f"# `swiftnb.data.prepare` vs trl's SFTTrainer dataset preparation: 10,000 text chat rows, CPU", '',
         f"- Date: {r['date']}",
         f"- Machine: {m['cpus']} CPU cores ({m['affinity']} usable), {m['cpu']}, {m['mem_gib']} GiB RAM, {m['os']}; no GPU used",
         f"- Command: `{r['command']}` (whole run: {r['total_s']:.0f} s, after {r.get('waited_s', 0):.0f} s waiting for a quiet machine)",
         f"- Versions: " + ', '.join(f"{k} {x}" for k, x in v.items())
         + ('' if r.get('code_sha_at_end', v.get('swiftnb/data.py code sha256')) == v.get('swiftnb/data.py code sha256') else
            f" — **swiftnb/data.py changed during the run (code sha256 at the end: {r['code_sha_at_end']})**"),
         f"- Data: {d['rows']:,} chat rows generated in the script (seed {SEED}); assistant turns per row "
         f"{turns}, system prompt in {d['system']:,} rows; median question "
         f"{d['q_words_median']:.0f} words, median answer {d['a_words_median']:.0f} words (p99 {d['a_words_p99']}, max {d['a_words_max']}); "
         f"{tok_total:,} tokens in all ({tok_total / d['rows']:.0f} per row) with the tiny tokenizer",
         f"- Tokenizer: `swiftnb.core.make_tiny('text')` loaded with `swiftnb.core.load_processor` (Qwen2Tokenizer pipeline, Qwen2.5's "
         f"pre-tokenizer and chat template, but a 1,209-token BPE vocabulary instead of ~151k, so more tokens per word than the "
         f"real tokenizer). "
         f"max_length={r['max_length']}.",
         *[f"- Note: {x}" for x in r.get('notes', [])],
         '', '## Results', '',
         f"Best of {r['repeats']} runs, each in a fresh subprocess. Time = `time.perf_counter()` around the preparation call only "
         "(imports, tokenizer/model loading, `Dataset.from_list` and trl's trainer construction are outside it). In every child: "
         "`datasets.disable_caching()` (so each run computes), `datasets.disable_progress_bars()`, and TOKENIZERS_PARALLELISM=false "
         "for both (trl tokenizes one string per row, swiftnb a handful of short segments in one call; a spot check outside this "
         "run, swiftnb num_proc=None with the variable unset, took 27.97 s wall / 27.8 CPU s vs 26.22 s / 25.9 CPU s with it "
         "false, both while another job loaded the machine: the tokenizer's Rust thread pool adds nothing here).", '',
         '| contender | num_proc | best s | rows/s | tokens/s | all runs (s) | CPU s of best run | tree RSS peak during prep (MiB) | tree PSS peak (MiB) | RSS before prep (MiB) | ru_maxrss main / largest worker (MiB) | other jobs\' load, all runs (cores) |',
         '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for (c, n), x in sorted(best.items(), key=lambda kv: (str(kv[0][1]), kv[0][0])):
        allr = ', '.join(f"{y['seconds']:.2f}" for y in r['runs'] if (y['contender'], y['num_proc']) == (c, n))
        ld = ', '.join(f"{y['other_load_cores']:.2f}" for y in r['runs'] if (y['contender'], y['num_proc']) == (c, n))
        L.append(f"| {c} | {n} | {x['seconds']:.2f} | {N_ROWS / x['seconds']:,.0f} | {tok_total / x['seconds']:,.0f} | {allr} | {x['prep_cpu_s']:.1f} | "
                 f"{MiB(x['tree_rss_peak'])} | {MiB(x['tree_pss_peak'])} | {MiB(x['rss_before'])} | "
                 f"{MiB(x['ru_maxrss_self'])} / {MiB(x['ru_maxrss_children']) if n else '-'} | {ld} |")
    mx = max(y['other_load_cores'] for y in r['runs'])
    L += ['', f"*Other jobs' load*: CPU used by processes outside this benchmark while each child ran (system-wide busy CPU "
          f"time from /proc/stat minus the benchmark's own, ÷ wall time). The script first waited {r['waited_s']:.0f} s for a quiet "
          f"machine (load by others when it started: {r['other_load_at_start']:.2f} cores). "
          + ("**Other jobs used up to {:.2f} of the 2 cores during some runs, which slows both contenders and especially "
             "num_proc=2; compare contenders within a num_proc row and read the ratios with that in mind.**".format(mx) if mx > 0.25
             else "The machine was quiet throughout (other jobs < 0.25 cores).")]
    L += ['', 'Ratios (swiftnb rows/s ÷ trl rows/s; >1 means swiftnb is faster):', '']
    for n in NUM_PROCS:
        s, t = best['swiftnb', n], best['trl', n]
        L.append(f"- num_proc={n}: **{t['seconds'] / s['seconds']:.2f}×** ({N_ROWS / s['seconds']:,.0f} vs {N_ROWS / t['seconds']:,.0f} rows/s); "
                 f"memory growth during preparation (tree RSS peak − RSS before): swiftnb {MiB(s['tree_rss_peak'] - s['rss_before'])} MiB, "
                 f"trl {MiB(t['tree_rss_peak'] - t['rss_before'])} MiB")
    for c in ('swiftnb', 'trl'):
        L.append(f"- {c}: num_proc=2 vs None speed-up {best[c, None]['seconds'] / best[c, 2]['seconds']:.2f}×")
    trl_x = best['trl', None]
    L += ['', '### How memory was measured', '',
          f"- *tree RSS / PSS peak during prep*: the parent samples the child process and all its descendants (the `datasets` "
          f"worker processes for num_proc=2) with psutil — RSS every {int(SAMPLE_S * 1000)} ms, PSS every {_Sampler.PSS_S} s (reading "
          "smaps is costlier), the process list every 0.25 s — sums each over the tree, and takes the maximum over the samples "
          "inside the timed call. RSS counts pages that forked workers share with the parent once per process (an over-count); "
          "PSS splits shared pages between the processes that map them (closer to what the machine really holds, but sampled "
          "less often, so it can miss a short peak).",
          "- *RSS before prep*: the child's own RSS just before the timed call: Python, datasets, transformers (loading the "
          "tokenizer with `AutoTokenizer` imports torch, ~280 MiB of it), the tokenizer and the 10,000-row Dataset (~60 MiB); for "
          "trl also the SFTTrainer and the tiny model, which add little. So the baselines are about equal and the growth "
          "figures in the ratios above compare the preparation itself.",
          "- *ru_maxrss*: the kernel's high-water mark, `resource.getrusage(RUSAGE_SELF)` of the child (whole life up to the end of "
          "the call) and `RUSAGE_CHILDREN` (the largest joined worker) read right after the call returns.",
          '', '## What each contender does', '',
          f"**swiftnb**: `swiftnb.data.prepare(datasets.Dataset.from_list(rows), tok, max_length={MAX_LENGTH}, num_proc=...)`. One "
          "`Dataset.map` (`_prepare_row`) with fixed output features. Per row: canonical messages → template messages; for every "
          "assistant turn j it renders the chat template three ways (whole conversation once, `messages[:j]` with "
          "`add_generation_prompt=True`, `messages[:j+1]`) and checks the prefixes agree, giving character spans of each answer "
          "(content + `<|im_end|>`, trailing newline stripped); then one batched tokenizer call over the text segments "
          "(prompt, answer, prompt, answer, …), labels = ids inside answer segments, -100 elsewhere; truncation to max_length "
          "(right), and an error/dropped/note record per row. After the map it reads the `_error`/`_dropped`/`_note` columns to "
          "build the `PrepareReport` (raising one error listing every bad row) and removes those columns. Output columns: "
          f"{best['swiftnb', None]['columns']}.", '',
          f"**trl**: `SFTTrainer(model=tiny model, args=SFTConfig(max_length={MAX_LENGTH}, assistant_only_loss=True, "
          "dataset_num_proc=...), train_dataset=<first 16 rows>, processing_class=tok)` is built untimed "
          f"(~{trl_x.get('trainer_init_s', 0):.1f} s: the per-trainer checks, and since the tiny template has no "
          "`{% generation %}` markers, `get_training_chat_template` swaps in trl's `qwen2_5_training.jinja` — "
          f"swapped: {trl_x.get('training_template_swapped')}); then the timed call is "
          "`trainer._prepare_dataset(ds, tok, args, args.packing, None, 'train')`, the very call `SFTTrainer.__init__` makes for "
          "`train_dataset` (checked: on the first 16 rows it gives what the constructor gave: "
          f"{trl_x.get('same_as_constructor_on_first_16')}). That runs four `Dataset.map`/`filter` passes: (1) tokenize — "
          "`tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True, "
          "chat_template=<training template>)`, one render + one tokenization with offsets per row, assistant mask from the "
          "`{% generation %}` spans; (2) build labels (ids where the mask is 1, else -100, dropping the mask column); (3) truncate "
          "input_ids/labels to max_length (keep_start); (4) filter out rows with no trained token. The `messages` column is kept. "
          f"Output columns: {best['trl', None]['columns']}.", '',
          "Not included in either: collation/padding, packing (off in both), shuffling (trl's `shuffle_dataset` defaults to False).",
          '', '## Do the outputs agree?', '']
    for k, c in r['compare'].items():
        if 'identical' in c: L.append(f"- {k}: identical outputs: {c['identical']}"); continue
        L.append(f"- {k}: {c['rows']:,} rows each (same count: {c['same_rows']}); input_ids differ in {c['input_ids_differ']} rows; "
                 f"labels differ in {c['labels_differ']:,} rows. Trained tokens: swiftnb {c['trained_tokens_a']:,}, trl {c['trained_tokens_b']:,} "
                 f"(of {c['total_tokens']:,}; {c['trained_runs_a']:,} trained assistant turns). Tokens trl trains and swiftnb does not: "
                 f"{c['only_b']} (preceded by {c['only_b_preceded_by']}); tokens swiftnb trains and trl does not: {c['only_a'] or 'none'}.")
    c = r['compare']['swiftnb vs trl, num_proc=None']
    if c['input_ids_differ'] == 0 and set(c['only_b']) == {'\n'} and not c['only_a']:
        L += ['', "So the token ids are identical in every row (swiftnb's segment-by-segment tokenization gives the same ids as "
              "trl's whole-string tokenization on this data) and the labels differ only in newline tokens that trl trains and "
              "swiftnb masks: trl's `qwen2_5_training.jinja` wraps `'\\n' + content + '<|im_end|>\\n'` in `{% generation %}`, "
              "so each assistant turn also trains the `\\n` right after the `<|im_start|>assistant` header (a token that is part "
              "of the prompt at inference, `add_generation_prompt` ends with it) and the `\\n` after `<|im_end|>` (a token the "
              "model never generates, as generation stops at `<|im_end|>`). swiftnb trains exactly each answer's content plus "
              f"`<|im_end|>`. That is {c['trained_tokens_b'] - c['trained_tokens_a']:,} extra trained tokens for trl "
              f"({(c['trained_tokens_b'] - c['trained_tokens_a']) / c['trained_tokens_a']:.2%} of swiftnb's); the trailing-newline "
              "count is a little lower than the header-newline count because truncation at max_length cut the last turn of a few "
              "rows before that newline. Every token swiftnb trains, trl trains too."]
    e = r['example']
    L += ['', f"Example (row {e['row']}, the shortest two-turn row; trained tokens in `[[...]]`):", '', 'swiftnb:', '', '```',
          e['swiftnb'], '```', '', 'trl:', '', '```', e['trl'], '```', '',
          'Positions where the labels differ (position, token, swiftnb label, trl label): ' + ', '.join(
              f"({j}, {t!r}, {s}, {u})" for j, t, s, u in e['diff']), '']
    return '\n'.join(L)


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--child', choices=('swiftnb', 'trl'))
    ap.add_argument('--num-proc', type=int, default=0)
    ap.add_argument('--result'); ap.add_argument('--dump')
    ap.add_argument('--report-only', action='store_true', help='rewrite data_prepare.md from data_prepare.json, running nothing')
    ap.add_argument('--wait', type=float, default=300, help='wait up to this many seconds for a quiet machine first')
    a = ap.parse_args()
    a.command = 'python bench/data_prepare.py'
    if a.child: a.contender = a.child; child(a)
    elif a.report_only: (HERE / 'data_prepare.md').write_text(report(json.loads((HERE / 'data_prepare.json').read_text())))
    else: parent(a)
