#!/usr/bin/env python
"""Benchmark: how long `import swiftnb.<module>` takes, and which heavy libraries each import loads (the goal: none of
torch, transformers, trl, and under 1 s).

    python bench/import_time.py                               # the working tree, recorded as label 'working tree'
    python bench/import_time.py --rev b939bd4 --label before  # swiftnb/ as of a commit (git archive), e.g. before a change

Each module is imported in its own fresh interpreter, `--repeats` times (default 7); the import's own time is measured in
the child (`time.perf_counter` around the import statement; interpreter start-up is reported apart, as the whole
process's wall time). One more run per module under `python -X importtime` gives the third-party packages that cost the
most. The child imports the package under test from a temporary copy (or the working tree) put first on PYTHONPATH, and
records the file it imported, so the editable install cannot stand in for it.

Writes bench/import_time.json (raw numbers, one entry per label, kept across runs) and bench/import_time.md (the report).
"""
from __future__ import annotations
import argparse, datetime, json, os, platform, re, shutil, statistics, subprocess, sys, tarfile, tempfile, io, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODULES = ['swiftnb', 'swiftnb.core', 'swiftnb.data', 'swiftnb.sft', 'swiftnb.dpo', 'swiftnb.infer', 'swiftnb.cli', 'swiftnb.doctor']
HEAVY = ['torch', 'transformers', 'trl', 'peft', 'datasets', 'accelerate', 'pyarrow', 'pandas', 'numpy', 'PIL', 'matplotlib',
         'ipywidgets', 'huggingface_hub', 'modelscope']
CHILD = """import sys, time, json
t = time.perf_counter()
import {mod} as m
dt = time.perf_counter() - t
print(json.dumps(dict(s=dt, heavy=[h for h in {heavy!r} if h in sys.modules], file=sys.modules['{mod}'].__file__)))
"""

def _source(rev:str|None) -> Path:
    "A folder holding the swiftnb package to measure: the working tree, or `git archive` of swiftnb/ at `rev`."
    if rev is None: return ROOT
    d = Path(tempfile.mkdtemp(prefix='swiftnb-import-'))
    tar = subprocess.run(['git', 'archive', rev, 'swiftnb'], cwd=ROOT, capture_output=True, check=True).stdout
    tarfile.open(fileobj=io.BytesIO(tar)).extractall(d, **({'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}))
    return d

def _child(src:Path, mod:str, importtime:bool=False):
    "Import `mod` from `src` in a fresh interpreter: (its JSON line or None, stderr, process seconds)."
    env = {**os.environ, 'PYTHONPATH': str(src), 'PYTHONWARNINGS': 'ignore'}
    cmd = [sys.executable, *(['-X', 'importtime'] if importtime else []), '-c', CHILD.format(mod=mod, heavy=HEAVY)]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=tempfile.gettempdir(), env=env)
    wall = time.perf_counter() - t
    out = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else None
    return out, p.stderr, wall

def _top(stderr:str, n:int=5) -> list:
    "The `n` third-party top-level packages with the largest cumulative import time, from `-X importtime` output."
    best = {}
    for line in stderr.splitlines():
        m = re.match(r'import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)', line)
        if not m: continue
        root = m[4].split('.')[0]
        if root.startswith('_') or root in ('swiftnb', 'sitecustomize', 'org') or root in sys.stdlib_module_names: continue
        best[root] = max(best.get(root, 0), int(m[2]))
    return [(k, round(v/1e6, 3)) for k, v in sorted(best.items(), key=lambda kv: -kv[1])[:n] if v >= 5000]   # from 5 ms

def measure(rev:str|None=None, repeats:int=7) -> dict:
    "Import time and heavy imports of each module in MODULES, from `rev` (None: the working tree)."
    src, res = _source(rev), {}
    for mod in MODULES:
        rel = Path(*mod.split('.'))
        if not ((src/rel).with_suffix('.py').exists() or (src/rel/'__init__.py').exists()):
            res[mod] = dict(error='not in this revision'); continue
        runs = [_child(src, mod) for _ in range(repeats)]
        if runs[0][0] is None:
            res[mod] = dict(error=runs[0][1].strip().splitlines()[-1] if runs[0][1].strip() else 'failed'); continue
        assert all(Path(r[0]['file']).resolve().is_relative_to(src.resolve()) for r in runs), (mod, runs[0][0]['file'], src)
        s = [r[0]['s'] for r in runs]; w = [r[2] for r in runs]
        _, err, _ = _child(src, mod, importtime=True)
        res[mod] = dict(import_s_median=round(statistics.median(s), 4), import_s_min=round(min(s), 4),
                        process_s_median=round(statistics.median(w), 3), heavy=runs[0][0]['heavy'], top=_top(err))
    if rev is not None: shutil.rmtree(src, ignore_errors=True)
    return res

def _md(data:dict) -> str:
    lines = ["# Import time of swiftnb's modules — `bench/import_time.py`", '',
             'Each module imported in a fresh interpreter; **import s** is the median (and minimum) of the import statement '
             "itself over the repeats, **process s** the median wall time of the whole `python -c` process (start-up included). "
             '**heavy** lists which of ' + ', '.join(HEAVY) + ' the import loaded. **top** are the costliest third-party packages '
             'under `python -X importtime` (cumulative seconds of one run).', '']
    for label, run in data.items():
        m = run['machine']
        lines += [f"## {label}", '', f"{run['date']}, source: {run['source']}, {run['repeats']} repeats; {m['cpus']} CPUs "
                  f"({m['platform']}), Python {m['python']}, torch {m['torch']}, transformers {m['transformers']}; load average at start "
                  f"{m['load']}.", '', '| module | import s (median / min) | process s | heavy modules loaded | top third-party imports (s) |',
                  '|---|---|---|---|---|']
        for mod, r in run['modules'].items():
            if 'error' in r: lines.append(f"| `{mod}` | — | — | {r['error']} | |"); continue
            top = ', '.join(f"{k} {v:.2f}" for k, v in r['top']) or '—'
            lines.append(f"| `{mod}` | {r['import_s_median']:.3f} / {r['import_s_min']:.3f} | {r['process_s_median']:.2f} | "
                         f"{', '.join(r['heavy']) or 'none'} | {top} |")
        lines.append('')
    return '\n'.join(lines)

def _version(dist):
    import importlib.metadata as md
    try: return md.version(dist)
    except md.PackageNotFoundError: return None

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--rev', default=None, help='measure swiftnb/ as of this git revision (default: the working tree)')
    ap.add_argument('--label', default=None, help="name of this run in the results (default: the revision, or 'working tree')")
    ap.add_argument('--repeats', type=int, default=7)
    ap.add_argument('--no-write', action='store_true', help='print only; leave bench/import_time.json and .md alone')
    a = ap.parse_args()
    label = a.label or (a.rev or 'working tree')
    source = f"git {a.rev} ({subprocess.run(['git', 'rev-parse', '--short', a.rev], cwd=ROOT, capture_output=True, text=True).stdout.strip()})" \
             if a.rev else 'working tree'
    machine = dict(platform=platform.platform(terse=True), cpus=os.cpu_count(), python=platform.python_version(),
                   torch=_version('torch'), transformers=_version('transformers'), load=round(os.getloadavg()[0], 2))
    res = measure(a.rev, a.repeats)
    run = dict(date=datetime.date.today().isoformat(), source=source, repeats=a.repeats, machine=machine, modules=res)
    print(_md({label: run}))
    ok = [r for r in res.values() if 'error' not in r]
    worst = max(r['import_s_median'] for r in ok)
    light = not any(set(r['heavy']) & {'torch', 'transformers', 'trl'} for r in ok)
    print(f"slowest import {worst:.3f} s; torch/transformers/trl loaded by none: {light}")
    if not a.no_write:
        jp = HERE/'import_time.json'
        data = json.loads(jp.read_text()) if jp.exists() else {}
        data[label] = run
        jp.write_text(json.dumps(data, indent=1) + '\n')
        (HERE/'import_time.md').write_text(_md(data))

if __name__ == '__main__': main()
