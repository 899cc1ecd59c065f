#!/usr/bin/env python
"""swiftnb's test runner: every notebook in nbs/ and tutorials/ (nbdev's test machinery), the pytest tests in tests/,
and a check that `nbdev-export` + `nbdev-clean` leave the tree unchanged. Prints each failure and ends with
`N passed, N failed`; exits non-zero when anything failed.

    python tools/test.py                 # everything, skipping cells flagged gpu/slow
    python tools/test.py --flags gpu     # also the GPU cells (one worker: GPU memory is not freed between notebooks)
    python tools/test.py nbs/00_errors.ipynb   # some notebooks only (no pytest, no step check)
    python tools/test.py --compat nbs/50_export.ipynb   # with tests/compat/ (needs SWIFTNB_VLLM_PYTHON: tools/fresh.sh compat)
    python tools/test.py --vllm .venv-compat/vllm   # everything, then a swiftnb export served by real vLLM from that environment
                                                    # (tools/fresh.sh test builds it in the background and passes this)
"""
import argparse, hashlib, importlib.util, json, os, signal, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

def _digest(paths):
    return {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}

def _tracked():
    return sorted([*ROOT.glob('nbs/**/*.ipynb'), *ROOT.glob('tutorials/**/*.ipynb'), *ROOT.glob('swiftnb/**/*.py')])

def check_in_step():
    "nbdev-export and nbdev-clean must change nothing: the package and the notebooks are in step and clean."
    before = _digest(_tracked())
    cmds = [['nbdev-export'], ['nbdev-clean']] + ([['nbdev-clean', '--fname', 'tutorials']] if any((ROOT/'tutorials').glob('*.ipynb')) else [])
    for cmd in cmds:
        r = subprocess.run([str(BIN/cmd[0]), *cmd[1:]], cwd=ROOT, capture_output=True, text=True)
        if r.returncode: return f"{' '.join(cmd)} failed:\n{r.stdout}{r.stderr}"
    after = _digest(_tracked())
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if changed: return ("nbdev-export/nbdev-clean changed these files (now rewritten; review and commit them):\n  "
                        + '\n  '.join(changed))

def test_notebook(nb, flags, timeout):
    "Run one notebook in its own process with nbdev's `test_nb`; returns (ok, seconds, error text)."
    code = ("import sys; from nbdev.test import test_nb; from nbdev.config import get_config; cfg = get_config();"
            f"skip = [f for f in cfg.tst_flags if f not in {flags!r}];"
            f"ok, _ = test_nb({str(nb)!r}, skip_flags=skip, force_flags={flags!r}, basepath=str(cfg.config_path));"
            "sys.exit(0 if ok else 1)")
    t0 = time.time()
    # its own process group: on a timeout the processes it started go too (a launcher's torchrun and its workers)
    p = RUNNING[nb] = subprocess.Popen([sys.executable, '-c', code], cwd=nb.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True,
                         env={'OMP_NUM_THREADS': '1', **os.environ, 'PYTHONWARNINGS': 'ignore'})   # 2 notebooks x 2 threads on 2 cores thrash
    try: _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return False, time.time()-t0, f"timed out after {timeout} s (its processes killed)"
    finally: RUNNING.pop(nb, None)
    return p.returncode == 0, time.time()-t0, (_failure(err) if p.returncode else '')

RUNNING = {}   # notebook -> its process, while it runs

def _stop(sig, frame):
    "Told to stop (SIGTERM: a time limit): the running notebooks' process groups go too, not left behind."
    for p in list(RUNNING.values()):
        try: os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError: continue   # it ended meanwhile
    sys.exit(128 + sig)

def _failure(err:str, n:int=6000) -> str:
    "The failing cell's error as nbdev reports it, not the end of stderr (which messages printed at exit, e.g. torch's, can fill)."
    i = err.find('While Executing')
    if i < 0: return err[-n:]
    s = max(0, i - 400); block = err[s:]
    if (j := block.find('\nException ignored in', i - s)) > 0: block = block[:j]   # the interpreter's shutdown noise after the report
    return block if len(block) <= n else block[:n//3] + '\n[...]\n' + block[-2*n//3:]   # the cell, and the error's last lines

def run_pytest(paths, env=None):
    "Run pytest on `paths`; returns (passed, failed, output)."
    import tempfile, xml.etree.ElementTree as ET
    xml = Path(tempfile.mkdtemp())/'junit.xml'
    r = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', f'--junitxml={xml}', *map(str, paths)],
                       cwd=ROOT, capture_output=True, text=True, env=env)
    if not xml.exists(): return 0, 1, r.stdout + r.stderr
    s = ET.parse(xml).getroot()
    s = s if s.tag == 'testsuite' else s.find('testsuite')
    total, bad, skipped = int(s.get('tests')), int(s.get('failures')) + int(s.get('errors')), int(s.get('skipped'))
    if skipped: print(f"pytest: {skipped} test(s) skipped (not counted as passed)", flush=True)
    if r.returncode == 5 or (total == skipped and total): bad += 1   # nothing ran: that is not a pass
    return total - bad - skipped, bad, (r.stdout[-8000:] if bad else '')

VLLM_TEST = ROOT/'tests'/'compat'/'test_vllm_cpu.py'

def vllm_test(env_dir, wait=1500):
    "The vLLM step: wait for `env_dir`'s background build (its `-build.rc` file), then serve an export with it; (passed, failed, output)."
    env_dir = Path(env_dir).resolve(); rc, log = env_dir.with_name(env_dir.name + '-build.rc'), env_dir.with_name(env_dir.name + '-build.log')
    t = time.time()
    if log.exists() or rc.exists():   # being built in the background (tools/fresh.sh test)
        while not rc.exists() and time.time() - t < wait: time.sleep(5)
        if not rc.exists(): return 0, 1, f"vLLM's environment {env_dir} was not built within {wait} s (its log: {log})"
        if rc.read_text().strip() != '0':
            return 0, 1, (f"building vLLM's environment failed (exit {rc.read_text().strip()}); the end of {log}:\n" +
                          (log.read_text()[-3000:] if log.exists() else ''))
    if not (env_dir/'bin'/'python').exists(): return 0, 1, f"{env_dir}/bin/python does not exist: no vLLM environment there"
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONDONTWRITEBYTECODE'}   # the server's processes reuse each other's bytecode
    return run_pytest([VLLM_TEST], env={**env, 'SWIFTNB_VLLM_PYTHON': str(env_dir/'bin'/'python')})

TIMES = ROOT/'tests'/'nb_times.json'   # seconds per notebook on 2 cores, from the last `--save-times` run

def longest_first(nbs:list) -> list:
    "The notebooks, the longest first (by TIMES; new ones count as long): two workers then end together, not one."
    t = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    return sorted(nbs, key=lambda p: -t.get(str(p.relative_to(ROOT)), 1e9))

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('paths', nargs='*', help='notebooks to test (default: all, plus pytest and the step check)')
    ap.add_argument('--flags', default='', help='space-separated test flags to run (gpu, slow)')
    ap.add_argument('--workers', type=int, default=None, help='notebooks run in parallel (default: 2; 1 with --flags gpu)')
    ap.add_argument('--timeout', type=int, default=1200, help='seconds per notebook')
    ap.add_argument('--compat', action='store_true', help="also the pytest tests in tests/compat/ (vLLM's and llm-compressor's environment)")
    ap.add_argument('--save-times', action='store_true', help=f'write the notebooks\' times to {TIMES.name} (their order next time)')
    ap.add_argument('--vllm', default=None, help="vLLM's environment (a venv folder): after the other pytest tests, serve an export with it")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, _stop)
    # the environment under test is this interpreter's: IPython (the notebooks' shell, the kernels) puts an activated
    # venv's site-packages first on sys.path when its own python lies outside it, so another lane (.venv-compat/...)
    # run from a shell where .venv is active would import .venv's transformers and torch
    if os.environ.get('VIRTUAL_ENV') and Path(os.environ['VIRTUAL_ENV']).resolve() != Path(sys.prefix).resolve():
        print(f"VIRTUAL_ENV={os.environ.pop('VIRTUAL_ENV')} is not this python's ({sys.prefix}): left out of the tests' "
              "environment", flush=True)
    flags = a.flags.split()
    # cells that decode clips need PyAV (the `video` extra): run where it imports (the GPU lane cannot carry it)
    if importlib.util.find_spec('av') and 'video' not in flags: flags.append('video')
    elif 'video' not in flags: print("PyAV does not import here: the cells flagged `video` (decoding clips) are skipped", flush=True)
    workers = a.workers or (1 if 'gpu' in flags else 2)
    passed, failed, t0, times = 0, 0, time.time(), {}
    def report(name, ok, secs, err):
        nonlocal passed, failed
        print(f"{'PASS' if ok else 'FAIL'} {name} ({secs:.0f} s)", flush=True)
        if ok: passed += 1
        else: failed += 1; print(err.rstrip() + '\n', flush=True)
    full = not a.paths
    if full:
        t = time.time(); err = check_in_step()
        report('notebooks and package in step (nbdev-export, nbdev-clean)', err is None, time.time()-t, err or '')
        t = time.time()   # the structure's rules (CONTRIBUTING.md): cell sizes, line lengths, imports, docments
        r = subprocess.run([sys.executable, str(ROOT/'tools'/'structure.py'), '--check', '--where'], cwd=ROOT,
                           capture_output=True, text=True)
        report('structure (tools/structure.py --check)', r.returncode == 0, time.time()-t, r.stdout[-4000:] + r.stderr[-2000:])
    nbs = [Path(p).resolve() for p in a.paths] or sorted(p for d in ('nbs', 'tutorials') for p in (ROOT/d).glob('**/*.ipynb')
                                                          if '.ipynb_checkpoints' not in p.parts and not p.name.startswith('_'))
    nbs = longest_first(nbs)
    tests = (sorted([*(ROOT/'tests').glob('test_*.py'), *(ROOT/'tests'/'e2e').glob('test_*.py')]) if full else []) + \
            (sorted((ROOT/'tests'/'compat').glob('test_*.py')) if a.compat else [])
    def pytests():
        t = time.time(); res = (*run_pytest(tests), time.time() - t) if tests else None
        if a.vllm:   # its own environment, after the other pytest tests (beside the notebooks, as they are)
            t = time.time(); res = (res, (*vllm_test(a.vllm), time.time() - t))
        return res
    with ThreadPoolExecutor(1) as side:   # pytest (wheel install, browser, servers) beside the notebooks: much of it waits on I/O
        pt = side.submit(pytests)
        with ThreadPoolExecutor(workers) as ex:   # each reported as it ends (one stuck notebook holds up no other's line)
            runs = {ex.submit(test_notebook, nb, flags, a.timeout): nb for nb in nbs}
            for f in as_completed(runs):
                ok, secs, err = f.result()
                report(str(runs[f].relative_to(ROOT)), ok, secs, err)
                times[str(runs[f].relative_to(ROOT))] = round(secs)
        r = pt.result()
        r, rv = r if a.vllm else (r, None)
        for name, res in ((' '.join(str(x.relative_to(ROOT)) for x in tests), r), (f"{VLLM_TEST.relative_to(ROOT)} in {a.vllm}", rv)):
            if res is None: continue
            p, f, out, secs = res
            print(f"pytest {name}: {p} passed, {f} failed ({secs:.0f} s)", flush=True)
            if f: print(out)
            passed += p; failed += f
    if a.save_times: TIMES.write_text(json.dumps(dict(sorted(times.items())), indent=0) + '\n')
    print(f"\n{passed} passed, {failed} failed in {time.time()-t0:.0f} s")
    sys.exit(1 if failed else 0)

if __name__ == '__main__': main()
