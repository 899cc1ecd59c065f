"""`swiftnb web-ui` in a real browser: the app Voilà serves, driven by headless Chromium through Playwright.

Starts `swiftnb web-ui` on a free localhost port (its runs in a temporary folder), opens the page, and does what a user
would: sees the model picker's plan for the tiny model, loads the built-in dataset (the preview shows its rows), trains a
few steps (the dashboard reaches its last step, with a curve), trains again and presses the dashboard's Stop (the run
ends early, with a checkpoint), opens a chat with the fine-tune beside the base model, types a message and gets an
answer streamed into both panes, scores the fine-tune and merges it; and finds no "Error displaying widget", no Python
traceback and no failed task in the page. Also: `--host
0.0.0.0` without a token is refused (exit code 2, saying what to pass), and with a token the page needs it.

    python -m pytest tests/e2e/test_webui.py -v     # from the repo root; screenshots go to tests/e2e/artifacts/webui/

Needs Debian's `chromium` (apt-get install -y chromium), `pip install playwright` (never `playwright install`) and Voilà
(`pip install "swiftnb[webui]"`); skips with the reason when one is missing. Environment: SWIFTNB_CHROMIUM (browser path),
SWIFTNB_E2E_ARTIFACTS (screenshot folder).
"""
import contextlib, os, re, shutil, subprocess, sys, tempfile, time, urllib.error, urllib.request
from pathlib import Path
import pytest
from test_jupyterlab import ROOT, CHROMIUM, _free_port, _stop, _text   # the JupyterLab test's browser and process helpers

ARTIFACTS = Path(os.environ.get('SWIFTNB_E2E_ARTIFACTS') or ROOT/'tests'/'e2e'/'artifacts')/'webui'
WAIT = 120_000   # ms: the longest a single page wait may take (a kernel's start and imports on a busy 2-core machine)
# `swiftnb` as installed, or the same entry point from this checkout
EXE = ([str(Path(sys.executable).parent/'swiftnb')] if (Path(sys.executable).parent/'swiftnb').exists() else
       [sys.executable, '-c', 'import sys; from swiftnb.cli import main; sys.exit(main())'])


def _requirements():
    "Skip (with the reason) where the browser stack or Voilà is missing."
    try: import playwright.sync_api  # noqa: F401
    except ImportError: pytest.skip("playwright is not installed (pip install playwright; do not run `playwright install`: the test uses Debian's chromium)")
    if not Path(CHROMIUM).exists(): pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set SWIFTNB_CHROMIUM)")
    for mod in ('voila', 'ipywidgets', 'ipykernel'):
        try: __import__(mod)
        except ImportError: pytest.skip(f"{mod} is not installed in this environment (pip install \"swiftnb[webui]\")")


def _env(root:Path, **kw) -> dict:
    "Offline, quiet, the token variable unset unless given, Jupyter's state in `root`."
    env = {k: v for k, v in os.environ.items() if k not in ('SWIFTNB_API_KEY', 'JUPYTER_TOKEN')}
    env.update(HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', SWIFTNB_OFFLINE='1', PYTHONWARNINGS='ignore',
               JUPYTER_RUNTIME_DIR=str(root/'runtime'), JUPYTER_CONFIG_DIR=str(root/'config'), **kw)
    env.setdefault('OMP_NUM_THREADS', '1')   # tiny models gain nothing from threads; on a shared 2-core runner they thrash
    return env


def _start(root:Path, *args, env=None):
    "`swiftnb web-ui` on a free port; returns (process, base URL) once Voilà says it is running."
    port = _free_port()
    log = root/f'webui-{port}.log'
    proc = subprocess.Popen([*EXE, 'web-ui', '--port', str(port), '--output_dir', str(root/'runs'), *args], cwd=root,
                            env=env or _env(root), stdout=open(log, 'w'), stderr=subprocess.STDOUT, start_new_session=True)
    t0 = time.time()
    while 'Voilà is running at' not in log.read_text():
        if proc.poll() is not None: raise RuntimeError(f"swiftnb web-ui exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if time.time() - t0 > 120: _stop(proc); raise RuntimeError(f"Voilà did not start within 120 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    return proc, f'http://127.0.0.1:{port}', log


def _shot(page, name:str, el=None):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(Exception):
        (el or page).screenshot(path=str(ARTIFACTS/f'{name}.png'), **({} if el else {'full_page': True}))


@contextlib.contextmanager
def _on_failure(page, name:str):
    "A full-page screenshot in the artefacts folder if the block fails."
    try: yield
    except BaseException:
        _shot(page, f'FAILED-{name}'); raise




@pytest.fixture(scope='module')
def app():
    "The app served by `swiftnb web-ui`, open in headless Chromium."
    _requirements()
    from playwright.sync_api import sync_playwright
    root = Path(tempfile.mkdtemp(prefix='swiftnb-webui-e2e-'))
    for old in ARTIFACTS.glob('*.png') if ARTIFACTS.exists() else []: old.unlink()   # this run's screenshots only
    proc, url, log = _start(root)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'])
            try:
                page = browser.new_page(viewport={'width': 1400, 'height': 1100})
                page.set_default_timeout(WAIT)
                with _on_failure(page, 'load'):
                    page.goto(url + '/')
                    page.wait_for_selector('.lm-TabBar-tab:has-text("Export")')   # the app's Tab rendered: its cell ran
                page.root, page.log = root, log
                yield page
            finally: browser.close()
    finally:
        _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def _tab(page, title:str):
    "Open the app's tab `title`; its panel."
    page.locator('.lm-TabBar-tab', has_text=title).first.click()
    panel = page.locator('.jupyter-widget-tab .widget-tab-contents > .lm-Widget:not(.lm-mod-hidden)').first
    panel.wait_for(state='visible')
    return panel


def _button(panel, name:str): return panel.get_by_role('button', name=name, exact=True).first


def _wait_text(page, loc, pattern:str, timeout=WAIT):
    "Wait until `loc`'s text matches the regular expression `pattern`; its text."
    page.wait_for_function("([e, p]) => new RegExp(p).test(e.innerText)", arg=[loc.element_handle(), pattern], timeout=timeout)
    return _text(loc)


def _no_errors(page):
    body = page.evaluate("() => document.body.innerText")
    assert 'Error displaying widget' not in body, body[:3000]
    assert not re.search(r'Traceback \(most recent call last\)|^\w+Error: ', body, re.M), body[:3000]
    assert ' failed: ' not in body, body[:3000]   # a Job's error line


def _set(panel, label:str, value):
    "Type `value` into the numeric field labelled `label`."
    box = panel.locator('.widget-inline-hbox', has=panel.page.locator('label', has_text=label)).first
    inp = box.locator('input').first
    inp.fill(str(value)); inp.press('Enter')


def test_page_renders_the_app_without_errors(app):
    with _on_failure(app, 'page'):
        titles = app.evaluate("() => Array.from(document.querySelectorAll('.lm-TabBar-tab')).map(e => e.innerText.trim())")
        assert titles[:6] == ['Model', 'Data', 'Train', 'Chat', 'Evaluate', 'Export'], titles
        _no_errors(app)
        assert 'from swiftnb.webui import App' not in app.evaluate("() => document.body.innerText"), 'code is hidden'


def test_model_tab_shows_the_tiny_models_plan(app):
    with _on_failure(app, 'model'):
        panel = _tab(app, 'Model')
        text = _text(panel)
        assert 'Device' in text and 'tiny-text' in text and ('estimated peak' in text or 'No plan' in text), text
        _shot(app, 'model', panel)


def test_data_tab_loads_and_previews_the_builtin_rows(app):
    with _on_failure(app, 'data'):
        panel = _tab(app, 'Data')
        _button(panel, 'Load').click()
        status = _wait_text(app, panel, r'8 rows: 8 ok')
        assert 'What is the capital of France?' in _text(panel), status
        panel.locator('button', has_text='▶').first.click()
        _wait_text(app, panel, r'What is the capital of Japan\?')
        _shot(app, 'data', panel)
        _no_errors(app)


def test_train_tab_trains_to_the_last_step(app):
    with _on_failure(app, 'train'):
        panel = _tab(app, 'Train')
        _set(panel, 'Steps', 8)
        _set(panel, 'Learning rate', 0.01)
        _button(panel, 'Train').click()
        _wait_text(app, panel, r'done: 8 steps', 300_000)
        bar = panel.locator('.progress-bar').first
        assert bar.evaluate("b => b.style.width") == '100%'
        assert 'step 8/8' in _text(panel) and 'loss' in _text(panel), _text(panel)
        curve = panel.locator('img').first
        assert curve.evaluate("i => i.complete && i.naturalWidth > 200"), 'no curve drawn'
        _shot(app, 'train-done', panel)
        _no_errors(app)


def test_dashboard_stop_ends_a_run_in_the_background(app):
    "The run goes on in a background thread, so the kernel delivers the Stop click while it trains."
    with _on_failure(app, 'train-stop'):
        panel = _tab(app, 'Train')
        _set(panel, 'Steps', 5000)
        _button(panel, 'Train').click()
        _wait_text(app, panel, r'step [1-9]\d*/5000', 300_000)   # the new run's dashboard, past its first step
        _button(panel, 'Stop').click()
        text = _wait_text(app, panel, r'stopped at step \d+', 120_000)
        step = int(re.search(r'stopped at step (\d+)', text).group(1))
        assert 1 <= step < 5000, text
        assert list((app.root/'runs').glob('sft-*/checkpoint-*')), 'Stop saved a checkpoint'
        _shot(app, 'train-stopped', panel)
        _no_errors(app)


def test_chat_tab_answers_beside_the_base_model(app):
    with _on_failure(app, 'chat'):
        panel = _tab(app, 'Chat')
        panel.locator('select').first.select_option(label='the fine-tune beside the picked model')
        _button(panel, 'Open chat').click()
        _wait_text(app, panel, r'chat with .* and .*: type a message')
        chat = panel.locator('.widget-vbox', has=app.locator('button', has_text='Send')).last   # the Chat widget
        view = chat.locator('.widget-html').first   # its conversation
        view.evaluate("""e => { window.__snaps = [];
            new MutationObserver(() => window.__snaps.push(e.innerText)).observe(e, {childList: true, subtree: true, characterData: true}); }""")
        question = 'What is the capital of Japan?'
        chat.locator('textarea').first.fill(question)
        _button(chat, 'Send').click()
        app.wait_for_function("([v, q]) => v.innerText.split(q).length === 3", arg=[view.element_handle(), question])
        # Stop (on while an answer is generated) is off again and Send is on: the answers are complete
        stop, send = (chat.locator('button', has_text=t).first.element_handle() for t in ('Stop', 'Send'))
        app.wait_for_function("([s, t]) => s.disabled && !t.disabled", arg=[stop, send])
        text = _text(view)
        replies = [part.split('assistant', 1)[-1].lstrip(': \n') for part in text.split(question)[1:]]
        assert len(replies) == 2 and all(r.strip() for r in replies), f"an empty reply in {text!r}"
        assert chat.locator('textarea').first.input_value() == '', 'the text box is cleared after Send'
        snaps = [x for x in app.evaluate("() => window.__snaps") if question in x]
        tails = [x.split(question)[-1] for x in snaps]
        growth = sum(len(b) > len(a) and b.startswith(a.rstrip()) for a, b in zip(tails, tails[1:]))
        assert len(set(snaps)) >= 3 and growth >= 2, f"the reply did not stream: {len(set(snaps))} views, {growth} growing"
        _shot(app, 'chat', panel)
        _no_errors(app)


def test_evaluate_and_export_tabs_score_and_merge_the_fine_tune(app):
    with _on_failure(app, 'evaluate'):
        panel = _tab(app, 'Evaluate')
        panel.locator('select').first.select_option(label='the fine-tune')
        _set(panel, 'Max new', 4)
        _button(panel, 'Evaluate').click()
        _wait_text(app, panel, r'scored: .*exact_match', 300_000)
        assert panel.locator('table').count() >= 1, 'the results table is shown'
        _shot(app, 'evaluate', panel)
    with _on_failure(app, 'export'):
        panel = _tab(app, 'Export')
        assert 'sft-' in panel.locator('input').first.input_value(), 'the last run is offered'
        _button(panel, 'Merge').click()
        text = _wait_text(app, panel, r'merged into \S+', 300_000)
        merged = Path(re.search(r'merged into (\S+)', text).group(1).split(' ')[0])
        assert (merged/'config.json').exists(), text
        _shot(app, 'export', panel)
        _no_errors(app)


def test_host_beyond_this_machine_needs_a_token(tmp_path):
    _requirements()
    env = _env(tmp_path)
    p = subprocess.run([*EXE, 'web-ui', '--host', '0.0.0.0', '--port', str(_free_port())], env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert 'needs a token' in p.stderr and 'SWIFTNB_API_KEY' in p.stderr and '--host 127.0.0.1' in p.stderr, p.stderr


def test_with_a_token_the_page_needs_it(tmp_path):
    _requirements()
    token = 'e2e-' + os.urandom(8).hex()
    proc, url, log = _start(tmp_path, '--host', '0.0.0.0', env=_env(tmp_path, SWIFTNB_API_KEY=token))
    try:
        assert token not in ' '.join(open(f'/proc/{proc.pid}/cmdline').read().split('\0')), 'the token is not in argv'
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **kw): return None
        opener = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as e:
            opener.open(url + '/', timeout=60)
        assert e.value.code in (302, 403) and ('login' in (e.value.headers.get('Location') or '') or e.value.code == 403), (e.value.code, e.value.headers)
        with pytest.raises(urllib.error.HTTPError):
            opener.open(url + '/?token=wrong', timeout=60)
        page = opener.open(f'{url}/?token={token}', timeout=180).read().decode()
        assert 'application/vnd.jupyter.widget-view+json' in page, page[-2000:]   # the app, its cell run
    finally: _stop(proc)
