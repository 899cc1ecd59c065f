"""`pip install swiftnb` into a hosted notebook's environment: the built wheel installs beside the torch already there and works.

Builds an sdist and, from it, a wheel (`python -m build`); makes a fresh virtual environment holding torch 2.13.0 (as a hosted
image holds its own torch); installs the wheel there (not editable; dependencies from the package index) and checks that torch
was neither replaced nor upgraded (same version, same files), that pip finds no conflict, that `import swiftnb` works without
loading torch, that the web app's notebook is installed (package data) and `swiftnb web-ui` refuses a public host without a
token, that `swiftnb doctor` runs, and that `swiftnb quickstart` runs offline on the tiny model.
Skips only when the package index cannot be reached. About 2.5 minutes on a 2-core machine (pip's cache and local wheels are
reused; nothing is byte-compiled at install time).
"""
import importlib.metadata as md, json, os, socket, subprocess, sys, tarfile, time, zipfile
from pathlib import Path
from urllib.parse import urlparse
import pytest

ROOT = Path(__file__).resolve().parent.parent
TORCH = '2.13.0'   # the hosted image's torch: a CPU wheel here (see TRAPS.md: an unpinned torch pulls a multi-GB CUDA build)
_NET_ERRORS = ('NewConnectionError', 'Max retries exceeded', 'Temporary failure in name resolution', 'Name or service not known',
               'Network is unreachable', 'Connection refused', 'ConnectTimeout', 'ReadTimeout', 'No matching distribution found',
               'Could not find a version that satisfies')

def _run(cmd, timeout=900, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)

def _index_reachable() -> bool:
    "Can pip's package index be reached (a TCP connection to its host, or its folder for a file:// index)?"
    url = os.environ.get('PIP_INDEX_URL') or _run([sys.executable, '-m', 'pip', 'config', 'get', 'global.index-url']).stdout.strip()
    u = urlparse(url or 'https://pypi.org/simple')
    if u.scheme == 'file': return Path(u.path).exists()
    try: socket.create_connection((u.hostname, u.port or (443 if u.scheme == 'https' else 80)), timeout=5).close()
    except OSError: return False
    return True

def _pip(py, *args) -> str:
    "Run this environment's pip on the environment of interpreter `py`; skip the test if it failed for want of the index."
    p = _run([sys.executable, '-m', 'pip', '--python', py, *args])
    out = p.stdout + p.stderr
    if p.returncode and any(e in out for e in _NET_ERRORS) and not _index_reachable():
        pytest.skip(f"the package index cannot be reached: {out.strip().splitlines()[-1]}")
    assert p.returncode == 0, f"pip {' '.join(map(str, args))} failed:\n{out[-4000:]}"
    return out

def _torch_state(py) -> dict:
    "torch's version, location and the identity of one of its files in the environment of `py` (read without importing torch)."
    code = ("import importlib.metadata as md, json, os; d = md.distribution('torch'); f = str(d.locate_file('torch/version.py'));"
            "s = os.stat(f); print(json.dumps(dict(version=d.version, file=f, inode=s.st_ino, mtime_ns=s.st_mtime_ns)))")
    p = _run([py, '-c', code])
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)

def _build(out:Path) -> tuple:
    "An sdist and a wheel built from it, into `out`."
    if _run([sys.executable, '-c', 'import build']).returncode:
        pytest.fail("The `build` package is missing here: pip install build (the wheel test runs `python -m build`).")
    try: local_backend = md.version('setuptools').split('.')[0].isdigit() and int(md.version('setuptools').split('.')[0]) >= 77
    except md.PackageNotFoundError: local_backend = False
    # with pyproject's build backend (setuptools>=77) already here, build without an isolated environment: seconds, no download
    p = _run([sys.executable, '-m', 'build', *(['--no-isolation'] if local_backend else []), '--outdir', out, ROOT])
    assert p.returncode == 0, f"python -m build failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    sdists, wheels = sorted(out.glob('swiftnb-*.tar.gz')), sorted(out.glob('swiftnb-*.whl'))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(out.iterdir())
    return sdists[0], wheels[0]

def test_wheel_installs_beside_hosted_torch(tmp_path):
    times, t = {}, time.time()
    def lap(k):
        nonlocal t; times[k] = round(time.time() - t, 1); t = time.time()
    sdist, wheel = _build(tmp_path/'dist'); lap('build')
    # what is packaged: every module of the source tree, the console script, and dependency ranges rather than pins
    src = {p.relative_to(ROOT).as_posix() for p in (ROOT/'swiftnb').rglob('*.py') if '__pycache__' not in p.parts}
    names = zipfile.ZipFile(wheel).namelist()
    assert {n for n in names if n.startswith('swiftnb/') and n.endswith('.py')} == src, (sorted(names), sorted(src))
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith('.dist-info/METADATA'))).decode()
    reqs = [l.split(':', 1)[1].strip() for l in meta.splitlines() if l.startswith('Requires-Dist:')]
    assert any(r.startswith('torch') for r in reqs) and not [r for r in reqs if '==' in r.split(';')[0]], reqs
    assert 'swiftnb = swiftnb.cli:main' in zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith('entry_points.txt'))).decode()
    sd = {'/'.join(Path(n).parts[1:]) for n in tarfile.open(sdist).getnames()}   # below the sdist's top folder
    assert {'pyproject.toml', 'README.md'} | src <= sd, sorted(sd)
    # package data: the web app's notebook (swiftnb web-ui serves it with Voilà), in both
    data = {p.relative_to(ROOT).as_posix() for p in (ROOT/'swiftnb'/'app').glob('*.ipynb')}
    assert 'swiftnb/app/swiftnb.ipynb' in data and data <= set(names) and data <= sd, (sorted(data), sorted(names))

    # a hosted notebook's environment: its own torch first
    venv, py = tmp_path/'venv', tmp_path/'venv'/'bin'/'python'
    assert _run([sys.executable, '-m', 'venv', '--without-pip', venv]).returncode == 0
    _pip(py, 'install', '--no-compile', f'torch=={TORCH}')
    before = _torch_state(py)
    assert before['version'].split('+')[0] == TORCH, before
    lap('venv + torch')
    out = _pip(py, 'install', '--no-compile', wheel); lap('install wheel')
    after = _torch_state(py)
    assert after == before and 'Uninstalling torch' not in out, f"installing swiftnb replaced torch: {before} -> {after}\n{out[-3000:]}"
    _pip(py, 'check')

    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
    env.update(HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', SWIFTNB_OFFLINE='1', HF_HOME=str(tmp_path/'hf'),
               SWIFTNB_CACHE=str(tmp_path/'cache'), MODELSCOPE_CACHE=str(tmp_path/'ms'), PYTHONWARNINGS='ignore')
    code = ("import sys, swiftnb, swiftnb.core, swiftnb.data, swiftnb.sft, swiftnb.dpo, swiftnb.infer, swiftnb.cli, swiftnb.doctor;"
            "print(swiftnb.__file__); print(sorted(m for m in ('torch', 'transformers', 'trl') if m in sys.modules))")
    p = _run([py, '-c', code], cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    file, heavy = p.stdout.split('\n')[:2]
    assert Path(file).is_relative_to(venv) and heavy == '[]', p.stdout   # the installed copy, not the source tree; no torch yet
    p = _run([py, '-c', 'from swiftnb.webui import app_notebook; print(app_notebook())'], cwd=tmp_path, env=env)
    assert p.returncode == 0 and Path(p.stdout.strip()).is_relative_to(venv), (p.stdout, p.stderr[-2000:])   # installed
    p = _run([venv/'bin'/'swiftnb', 'web-ui', '--host', '0.0.0.0'], cwd=tmp_path,
             env={k: v for k, v in env.items() if k != 'SWIFTNB_API_KEY'})
    assert p.returncode == 2 and 'needs a token' in p.stderr, (p.returncode, p.stderr[-2000:])   # refused before Voilà

    p = _run([venv/'bin'/'swiftnb', 'doctor', '--json'], cwd=tmp_path, env=env)
    d = json.loads(p.stdout)
    assert p.returncode == (0 if d['ok'] else 1) and d['torch']['version'] == after['version'], (p.stdout[-2000:], p.stderr[-2000:])
    assert not [f for f in d['findings'] if f['level'] == 'error'], d['findings']
    lap('import + doctor')

    qs, cmd = tmp_path/'qs', [venv/'bin'/'swiftnb', 'quickstart']
    short = ['--steps', '2'] + (['--dpo_steps', '2'] if '--dpo_steps' in _run(cmd + ['--help'], env=env).stdout else [])   # lean: CI's time
    p = _run(cmd + ['--output_dir', qs, *short], cwd=tmp_path, env=env, timeout=600)
    assert p.returncode == 0, f"swiftnb quickstart failed offline:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    assert list(qs.rglob('final/swiftnb_manifest.json')) and 'done in' in p.stdout, p.stdout[-2000:]   # a trained adapter, complete
    lap('quickstart')
    print(f"wheel test stages (s): {times}, total {sum(times.values()):.0f}")
