"""Tutorial 1 in a real JupyterLab, driven by a real browser (headless Chromium through Playwright).

Starts JupyterLab on a free localhost port with token auth, opens a temporary copy of `tutorials/01_quickstart.ipynb`
(plus one cell that previews a small image dataset), runs all cells from the Run menu, waits for the kernel, and checks
in the page what a user would see: no cell errors, no "Error displaying widget", and each widget alive — the model
picker redraws its estimate when the model changes, the data preview pages to the next row (and shows images), the
training dashboards reach 100% with a drawn curve, and the chat answers a typed message, streaming its text; Stop ends a
long answer, and the kernel is idle while the answer streams in (the chat generates in a background thread). Enter sends
and Shift+Enter starts a new line; a long answer scrolls in the chat's own pane, following the newest text, with the text
box still in view. What the tutorial's calls write to stderr is counted, with a budget of none (the kernel runs with
Python's default warning filters, as a user's does), and so are the libraries' progress bars beside the dashboards. At
1024 and 1440 px wide the outputs fit their cells, the picker's Hub toggle is one row, and the chat's labels are whole
(screenshots chat-1024.png, chat-1440.png ...).

    python -m pytest tests/e2e -v        # from the repo root; screenshots go to tests/e2e/artifacts/

Needs Debian's `chromium` (apt-get install -y chromium) and `pip install playwright` (never `playwright install`: the
browser download is neither needed nor possible offline); skips with the reason when either is missing.
Environment: SWIFTNB_CHROMIUM (browser path), SWIFTNB_E2E_ARTIFACTS (screenshot folder), SWIFTNB_E2E_TIMEOUT (seconds
for Run All, default 600).
"""
import contextlib, json, os, secrets, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT/'tutorials'/'01_quickstart.ipynb'
CHROMIUM = os.environ.get('SWIFTNB_CHROMIUM') or shutil.which('chromium') or '/usr/bin/chromium'
ARTIFACTS = Path(os.environ.get('SWIFTNB_E2E_ARTIFACTS') or ROOT/'tests'/'e2e'/'artifacts')
RUN_TIMEOUT = float(os.environ.get('SWIFTNB_E2E_TIMEOUT', 600))
WAIT = 60_000   # ms: the longest any single page wait may take (the Run All wait has its own deadline)

# The one cell added to the tutorial's copy: tutorial 1 is text-only, and the preview must be seen showing images too.
IMAGE_PREVIEW = """# e2e: an image dataset in the preview (added by tests/e2e to the tutorial's copy)
from PIL import Image, ImageDraw
img_rows = []
for i, (name, color) in enumerate([('red square', (220, 40, 40)), ('blue circle', (40, 60, 220))]):
    im = Image.new('RGB', (96, 96), 'white'); d = ImageDraw.Draw(im)
    (d.rectangle if i == 0 else d.ellipse)([16, 16, 80, 80], fill=color)
    im.save(WORK/f'e2e_{i}.png')
    img_rows.append({'messages': [{'role': 'user', 'content': '<image>What is this?'}, {'role': 'assistant', 'content': f'A {name}.'}],
                     'images': [str(WORK/f'e2e_{i}.png')]})
img_preview = preview(load_dataset(img_rows))
img_preview"""


def _requirements():
    "Skip (with the reason) where the browser stack is missing."
    try: import playwright.sync_api  # noqa: F401
    except ImportError: pytest.skip("playwright is not installed (pip install playwright; do not run `playwright install`: the test uses Debian's chromium)")
    if not Path(CHROMIUM).exists(): pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set SWIFTNB_CHROMIUM)")
    for mod, pkg in (('jupyterlab', 'jupyterlab'), ('ipywidgets', 'ipywidgets'), ('jupyterlab_widgets', 'jupyterlab_widgets'), ('ipykernel', 'ipykernel')):
        try: __import__(mod)
        except ImportError: pytest.skip(f"{pkg} is not installed in this environment")
    if not TUTORIAL.exists(): pytest.fail(f"{TUTORIAL} is missing")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _notebook_copy(dest:Path):
    "The tutorial, plus the image-preview cell, written to `dest` with its outputs cleared."
    nb = json.loads(TUTORIAL.read_text())
    for c in nb['cells']:
        if c['cell_type'] == 'code': c['outputs'], c['execution_count'] = [], None
    nb['cells'].append({'cell_type': 'code', 'execution_count': None, 'id': 'e2e-image-preview', 'metadata': {}, 'outputs': [],
                        'source': IMAGE_PREVIEW.splitlines(keepends=True)})
    dest.write_text(json.dumps(nb, indent=1))


def _start_lab(root:Path):
    "JupyterLab on a free port with a random token, its settings and state kept in `root`; returns (process, base URL, token)."
    port, token = _free_port(), secrets.token_hex(16)
    settings = root/'user-settings'
    # every cell in the DOM (no virtual scrolling), so each cell's output can be found and checked
    (settings/'@jupyterlab'/'notebook-extension').mkdir(parents=True)
    (settings/'@jupyterlab'/'notebook-extension'/'tracker.jupyterlab-settings').write_text(json.dumps({'windowingMode': 'none', 'autoStartDefaultKernel': True}))
    (settings/'@jupyterlab'/'apputils-extension').mkdir(parents=True)
    (settings/'@jupyterlab'/'apputils-extension'/'notification.jupyterlab-settings').write_text(
        json.dumps({'fetchNews': 'false', 'checkForUpdates': False}))
    # Python's default warning filters, as in a user's kernel: the stderr budget counts what a user would see
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONWARNINGS'}
    env.update(JUPYTER_RUNTIME_DIR=str(root/'runtime'), JUPYTER_CONFIG_DIR=str(root/'config'))
    env.setdefault('OMP_NUM_THREADS', '1')   # tiny models gain nothing from threads; on a shared 2-core runner, threads oversubscribe
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--allow-root', '--ip=127.0.0.1', f'--port={port}',
           f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={root/"nb"}', f'--LabApp.user_settings_dir={settings}',
           f'--LabApp.workspaces_dir={root/"workspaces"}', '--LabApp.extension_manager=readonly', '--LabApp.news_url=None',
           '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate']
    log = open(root/'jupyterlab.log', 'w')
    proc = subprocess.Popen(cmd, cwd=root/'nb', env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url, t0 = f'http://127.0.0.1:{port}', time.time()
    while True:
        if proc.poll() is not None: raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{(root/'jupyterlab.log').read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f'{url}/api/status?token={token}', timeout=2).read(); break
        except Exception:
            if time.time() - t0 > 90: _stop(proc); raise RuntimeError(f"JupyterLab did not answer within 90 s:\n{(root/'jupyterlab.log').read_text()[-3000:]}")
            time.sleep(0.5)
    return proc, url, token


def _stop(proc):
    "End the server and its kernels (its own process group), politely first."
    if proc.poll() is not None: return
    with contextlib.suppress(ProcessLookupError): os.killpg(proc.pid, signal.SIGTERM)
    try: proc.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError): os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _shot(page, name:str):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(Exception): page.screenshot(path=str(ARTIFACTS/f'{name}.png'), full_page=True)


@contextlib.contextmanager
def _on_failure(page, name:str):
    "A full-page screenshot in the artefacts folder if the block fails."
    try: yield
    except BaseException:
        _shot(page, f'FAILED-{name}'); raise


class Lab:
    "The open notebook page, with helpers to find a cell by its source and read the kernel state."
    def __init__(self, page, root): self.page, self.root = page, root

    def cell(self, marker:str):
        "The code cell whose source contains `marker`."
        loc = self.page.locator('.jp-CodeCell').filter(has=self.page.locator('.jp-InputArea-editor', has_text=marker))
        assert loc.count() == 1, f"expected one cell containing {marker!r}, found {loc.count()}"
        return loc.first

    def outputs(self, marker:str): return self.cell(marker).locator('.jp-OutputArea-output')

    def kernel_status(self) -> str:
        return self.page.evaluate("() => document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status || 'unknown'")

    def prompts(self) -> list:
        return self.page.evaluate("() => Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')).map(e => e.textContent.trim())")

    def wait_idle(self, timeout_s:float=60, settle_s:float=1.0):
        "Wait until the kernel has been idle for `settle_s` seconds."
        end, since = time.time() + timeout_s, None
        while time.time() < end:
            if self.kernel_status() == 'idle':
                since = since or time.time()
                if time.time() - since >= settle_s: return
            else: since = None
            time.sleep(0.2)
        raise AssertionError(f"kernel still {self.kernel_status()!r} after {timeout_s:.0f} s")

    def shot(self, name:str, marker=None):
        "Screenshot into the artefacts folder: of a cell (by a source marker), of an element (a locator), or of the page."
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        if marker is None: return _shot(self.page, name)
        el = self.cell(marker) if isinstance(marker, str) else marker
        el.scroll_into_view_if_needed()
        el.screenshot(path=str(ARTIFACTS/f'{name}.png'))


@pytest.fixture(scope='module')
def lab():
    "JupyterLab with the tutorial's copy open in headless Chromium, after Run All Cells has finished."
    _requirements()
    from playwright.sync_api import sync_playwright
    root = Path(tempfile.mkdtemp(prefix='swiftnb-e2e-'))
    (root/'nb').mkdir()
    for old in ARTIFACTS.glob('*.png') if ARTIFACTS.exists() else []: old.unlink()   # this run's screenshots only
    _notebook_copy(root/'nb'/'quickstart.ipynb')
    proc, url, token = _start_lab(root)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'])
            try:
                page = browser.new_page(viewport={'width': 1500, 'height': 1100})
                page.set_default_timeout(WAIT)
                lab = Lab(page, root)
                t0 = time.time()
                with _on_failure(page, 'run-all'):
                    page.goto(f'{url}/lab/tree/quickstart.ipynb?token={token}')
                    page.wait_for_selector('.jp-Notebook .jp-CodeCell')
                    _accept_kernel_dialog(page)
                    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]')   # the kernel is up
                    page.click('.lm-MenuBar-itemLabel:text-is("Run")')
                    page.click('.lm-Menu-itemLabel:text-is("Run All Cells")')
                    _accept_kernel_dialog(page)
                    _wait_started(lab)
                    _wait_run_all(lab, RUN_TIMEOUT)
                lab.run_s = time.time() - t0
                print(f"\nRun All Cells finished in {lab.run_s:.0f} s (page load included)")
                yield lab
            finally: browser.close()
    finally:
        _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def _accept_kernel_dialog(page, wait_s:float=3):
    "If JupyterLab asks which kernel to start, take its suggestion (the venv's Python 3), as a user would."
    end = time.time() + wait_s
    while time.time() < end:
        dlg = page.locator('.jp-Dialog:has-text("Select Kernel")')
        if dlg.count():
            dlg.locator('button', has_text='Select').click(); dlg.wait_for(state='detached'); return
        time.sleep(0.25)


def _wait_started(lab:Lab, timeout_s:float=60):
    "Wait until the first code cell is queued or has run: Run All was accepted."
    end = time.time() + timeout_s
    while time.time() < end:
        ps = lab.prompts()
        if ps and ('*' in ps[0] or any(ch.isdigit() for ch in ps[0])): return
        _accept_kernel_dialog(lab.page, 0.5)
    raise AssertionError(f"Run All Cells did not start within {timeout_s:.0f} s; prompts: {lab.prompts()[:3]}")


def _wait_run_all(lab:Lab, timeout_s:float):
    "Wait until every code cell has run (or the run stopped at an error): no cell queued or running, the kernel idle."
    end = time.time() + timeout_s
    time.sleep(1)
    while time.time() < end:
        if not [p for p in lab.prompts() if '*' in p] and lab.kernel_status() == 'idle':
            time.sleep(2)   # a last output or widget message may still be on its way
            if not [p for p in lab.prompts() if '*' in p] and lab.kernel_status() == 'idle': return
        time.sleep(1)
    raise AssertionError(f"Run All did not finish within {timeout_s:.0f} s; prompts: {lab.prompts()}")


def _text(loc) -> str: return loc.evaluate("e => e.innerText")


def _panel(lab, marker:str, button:str):
    "The widget panel in `marker`'s output that holds a `button` (the output may also hold tqdm's bars, which are widgets too)."
    p = lab.outputs(marker).locator('.widget-vbox', has=lab.page.locator('button', has_text=button))
    assert p.count() >= 1, f"no panel with a {button!r} button in the output of {marker!r}"
    return p.first


def test_all_cells_ran_without_errors(lab):
    page = lab.page
    with _on_failure(page, 'errors'):
        prompts = lab.prompts()
        not_run = [i for i, p in enumerate(prompts) if not any(ch.isdigit() for ch in p)]
        tracebacks = page.evaluate("""() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))
            .map(e => e.innerText).filter(t => /Traceback \\(most recent call last\\)|^\\w+Error: /m.test(t)).map(t => t.slice(0, 1500))""")
        assert not tracebacks, "cell errors:\n" + '\n---\n'.join(tracebacks)
        assert not not_run, f"cells {not_run} did not run (prompts {prompts})"
        body = page.evaluate("() => document.body.innerText")
        assert 'Error displaying widget' not in body
        n_widgets = page.locator('.jp-OutputArea-output .jupyter-widgets').count()
        assert n_widgets >= 4, f"only {n_widgets} widget views rendered"
    lab.shot('notebook-after-run-all')


def _stderr_outputs(lab) -> list:
    "The stderr outputs on the page: (the first source line of their cell, their text)."
    return lab.page.evaluate("""() => Array.from(document.querySelectorAll(
            '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]'))
        .map(e => [(e.closest('.jp-CodeCell')?.querySelector('.jp-InputArea-editor')?.innerText || '?').split('\\n')[0],
                   e.innerText.slice(0, 1000)])""")


def _library_bars(lab) -> list:
    "The progress bars on the page that are not a dashboard's (tqdm's, drawn as widgets): their text."
    return lab.page.evaluate("""() => Array.from(document.querySelectorAll('.jp-OutputArea-output .widget-hprogress'))
        .filter(b => !Array.from(b.closest('.widget-vbox')?.querySelectorAll('button') || [])
                          .some(x => x.innerText.trim() === 'Stop'))
        .map(b => (b.closest('.widget-hbox') || b.parentElement).innerText.trim().slice(0, 200))""")


def test_tutorial_writes_nothing_to_stderr(lab):
    """Budget: no stderr output and no library progress bar in tutorial 1. swiftnb's own output is the dashboard; what it
    calls stays quiet unless something is wrong for this run (the kernel shows warnings as a user's does)."""
    with _on_failure(lab.page, 'noise'):
        err = _stderr_outputs(lab)
        assert not err, f"{len(err)} stderr outputs (budget 0):\n" + '\n---\n'.join(f"[{c}]\n{t}" for c, t in err)
        bars = _library_bars(lab)
        assert not bars, f"{len(bars)} progress bars beside the dashboards (budget 0): {bars}"


def test_model_picker_redraws_the_estimate(lab):
    page, marker = lab.page, 'picker = ModelPicker('
    with _on_failure(page, 'model-picker'):
        out = lab.outputs(marker)
        selects = out.locator('.widget-dropdown select')
        assert selects.count() >= 3, 'the picker shows family, model and tuner dropdowns'
        estimate = out.locator('.widget-html').last
        before = _text(estimate)
        assert 'Device' in before and 'tiny-text' in before, before
        lab.shot('model-picker-before', marker)
        family, model = selects.nth(0), selects.nth(1)
        family.select_option(label='Qwen2.5')
        page.wait_for_function("([e, t]) => e.innerText !== t", arg=[estimate.element_handle(), before], timeout=WAIT)
        options = model.evaluate("s => Array.from(s.options).map(o => o.textContent)")
        big = next(o for o in options if o.startswith('Qwen2.5-7B'))
        mid = _text(estimate)
        model.select_option(label=big)
        page.wait_for_function("([e, t]) => e.innerText.includes(t)", arg=[estimate.element_handle(), big], timeout=WAIT)
        after = _text(estimate)
        assert after != mid and big in after, (mid, after)
        assert 'estimated peak' in after or 'No plan' in after, after
        lab.shot('model-picker-after', marker)


def _page_preview(lab, marker, first, second, name):
    page = lab.page
    out = lab.outputs(marker)
    html = out.locator('.widget-html').last
    readout = out.locator('.widget-readout').first
    assert readout.inner_text().strip() == '1', 'the slider counts rows from 1, as their source lines do'
    assert first in _text(html), _text(html)
    lab.shot(f'{name}-row0', marker)
    out.locator('button', has_text='▶').first.click()
    page.wait_for_function("([e, t]) => e.innerText.includes(t)", arg=[html.element_handle(), second], timeout=WAIT)
    assert readout.inner_text().strip() == '2'
    lab.shot(f'{name}-row1', marker)
    return out


def test_data_preview_pages_and_shows_images(lab):
    page = lab.page
    with _on_failure(page, 'preview'):
        out = _page_preview(lab, 'preview(ds, tok', 'What is the capital of France?', 'What is the capital of Japan?', 'preview-text')
        assert 'trained' in _text(out), 'the preview shows the trained-token count'
        out = _page_preview(lab, 'img_preview = preview(', 'A red square.', 'A blue circle.', 'preview-images')
        img = out.locator('.widget-html img').first
        img.wait_for(state='visible')
        assert img.evaluate("i => i.complete && i.naturalWidth > 0"), 'the thumbnail is a decodable image'


def test_training_dashboards_complete_with_curves(lab):
    page = lab.page
    for marker, name, final, extra in (('result = sft(', 'dashboard-sft', 'step 100/100', 'loss'),
                                       ('aligned = dpo(', 'dashboard-dpo', 'step 16/16', 'margins')):
        with _on_failure(page, name):
            # the dashboard is the panel with a Stop button (other bars in the output are tqdm's, e.g. "Loading weights")
            dash = _panel(lab, marker, 'Stop')
            width = dash.locator('.progress-bar').first.evaluate("b => b.style.width")
            assert width == '100%', f"{name}: progress bar at {width}"
            status = _text(dash.locator('.widget-html').first)
            assert final in status and extra in status, status
            curve = dash.locator('img').first
            assert curve.evaluate("i => i.complete && i.naturalWidth > 200 && i.naturalHeight > 100"), f"{name}: no curve drawn"
            lab.shot(name, dash)


def _wait_answered(lab, panel, timeout=WAIT):
    "Wait until the chat's answer is complete: Stop (on while an answer is generated) is off again and Send is on. Call it once the answer has begun."
    stop, send = (panel.locator('button', has_text=t).first.element_handle() for t in ('Stop', 'Send'))
    lab.page.wait_for_function("([s, t]) => s.disabled && !t.disabled", arg=[stop, send], timeout=timeout)


def test_chat_answers_a_typed_message(lab):
    page, marker = lab.page, 'chat = Chat('
    with _on_failure(page, 'chat'):
        out = _panel(lab, marker, 'Send')
        view = out.locator('.widget-html').first
        before = _text(view).count('assistant')
        out.locator('textarea').first.fill('What is the capital of France?')
        out.locator('button', has_text='Send').first.click()
        page.wait_for_function("([e, n]) => (e.innerText.match(/assistant/g) || []).length > n", arg=[view.element_handle(), before], timeout=WAIT)
        _wait_answered(lab, out)   # the answer streams in from a background thread: the kernel goes idle before it is complete
        text = _text(view)
        assert 'What is the capital of France?' in text
        reply = text.rsplit('assistant', 1)[-1].lstrip(': \n')
        assert reply.strip(), f"empty reply in {text!r}"
        assert out.locator('textarea').first.input_value() == '', 'the text box is cleared after Send'
        lab.shot('chat', out)


def test_chat_enter_sends_and_shift_enter_starts_a_line(lab):
    "In the chat's text box Enter sends the message; Shift+Enter starts a new line and neither sends nor runs the cell."
    page, marker = lab.page, 'chat = Chat('
    with _on_failure(page, 'chat-enter'):
        out = _panel(lab, marker, 'Send')
        view, box = out.locator('.widget-html').first, out.locator('textarea').first
        users, prompts = _text(view).count('user:'), lab.prompts()
        box.fill('')
        box.press_sequentially('First line')
        box.press('Shift+Enter')
        box.press_sequentially('second line')
        assert box.input_value() == 'First line\nsecond line', repr(box.input_value())
        time.sleep(1)
        assert _text(view).count('user:') == users, 'Shift+Enter sent the message'
        assert lab.prompts() == prompts and lab.kernel_status() == 'idle', 'Shift+Enter ran the cell'
        box.fill('What is the capital of Italy?')
        box.press('Enter')
        page.wait_for_function("([e, n]) => (e.innerText.match(/user:/g) || []).length > n",
                               arg=[view.element_handle(), users], timeout=WAIT)
        _wait_answered(lab, out)
        assert 'What is the capital of Italy?' in _text(view) and box.input_value() == '', 'Enter sent it and cleared the box'
        assert lab.prompts() == prompts, 'Enter in the chat ran the cell'
        lab.shot('chat-enter', out)


def test_side_by_side_chat_streams(lab):
    "Every message goes to both models; the answers arrive piece by piece (the view is redrawn as text streams in)."
    page, marker = lab.page, 'side = Chat('
    with _on_failure(page, 'chat-side-by-side'):
        out = _panel(lab, marker, 'Send')
        view = out.locator('.widget-html').first
        view.evaluate("""e => { window.__snaps = [];
            new MutationObserver(() => window.__snaps.push(e.innerText)).observe(e, {childList: true, subtree: true, characterData: true}); }""")
        question = 'What is the capital of Norway?'
        out.locator('textarea').first.fill(question)
        out.locator('button', has_text='Send').first.click()
        page.wait_for_function("q => window.__snaps.some(s => s.includes(q))", arg=question, timeout=WAIT)
        _wait_answered(lab, out, 120_000)
        snaps = [s for s in page.evaluate("() => window.__snaps") if question in s]
        final = _text(view)
        assert final.count(question) == 2, 'the question went to both models'
        tails = [s.split(question)[-1] for s in snaps]
        growth = sum(len(b) > len(a) and b.startswith(a.rstrip()) for a, b in zip(tails, tails[1:]))
        assert len(set(snaps)) >= 3 and growth >= 2, f"the reply did not stream: {len(set(snaps))} distinct views, {growth} growing steps"
        lab.shot('chat-side-by-side', out)
        assert 'Error displaying widget' not in page.evaluate("() => document.body.innerText")


def test_chat_stop_ends_a_long_answer_with_the_kernel_free(lab):
    "A long answer streams while the kernel is idle (the notebook stays usable); Stop ends it, the partial answer stays, marked stopped."
    page, marker = lab.page, 'side = Chat('
    with _on_failure(page, 'chat-stop'):
        out = _panel(lab, marker, 'Send')
        view, stop, send = out.locator('.widget-html').first, out.locator('button', has_text='Stop').first, out.locator('button', has_text='Send').first
        assert stop.is_disabled() and send.is_enabled(), 'Stop is on only while an answer is generated'
        out.get_by_text('Settings', exact=True).first.click()
        max_new = out.locator('.widget-inline-hbox', has_text='Max new').locator('input').first
        # the untrained base model runs on to max_new_tokens: enough of them that both panes are still answering when Stop is
        # pressed (with 2000, a fast machine finished both while the test waited for the kernel and took its screenshot)
        max_new.fill('8000'); max_new.press('Enter')
        before = _text(view).count('[stopped]')
        out.locator('textarea').first.fill('Tell me a long story.')
        send.click()
        page.wait_for_function("""s => !s.disabled &&
            document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status === 'idle'""", arg=stop.element_handle(), timeout=WAIT)
        lab.shot('chat-generating', out)
        stop.click()
        _wait_answered(lab, out)
        text = _text(view)
        assert text.count('[stopped]') > before, f"no stopped answer in {text!r}"
        assert text.count('Tell me a long story.') == 2, 'the message went to both panes'
        lab.shot('chat-stopped', out)


def _pane(view) -> dict:
    return view.evaluate("e => ({height: e.scrollHeight, shown: e.clientHeight, top: e.scrollTop})")


def test_chat_long_answer_scrolls_with_the_text_box_in_view(lab):
    """A long answer scrolls in the chat's own pane, which follows the newest text as it streams in; the window keeps its
    size, so the text box stays in view."""
    page, marker = lab.page, 'side = Chat('
    with _on_failure(page, 'chat-long'):
        out = _panel(lab, marker, 'Send')
        view, box = out.locator('.widget-html').first, out.locator('textarea').first
        stop = out.locator('button', has_text='Stop').first
        if not out.locator('.widget-inline-hbox', has_text='Max new').first.is_visible():
            out.get_by_text('Settings', exact=True).first.click()
        max_new = out.locator('.widget-inline-hbox', has_text='Max new').locator('input').first
        max_new.fill('600')   # the untrained base model runs on to max_new_tokens: a long answer
        max_new.press('Enter')
        box.fill('Tell me a long story.')
        box.press('Enter')
        page.wait_for_function("s => !s.disabled", arg=stop.element_handle(), timeout=WAIT)
        samples, end = [], time.time() + 120
        while stop.is_enabled() and time.time() < end:
            samples.append(_pane(view))
            time.sleep(0.25)
        _wait_answered(lab, out, 120_000)
        time.sleep(0.5)
        p = _pane(view)
        assert p['height'] > p['shown'] + 200, f"the answer does not overflow the pane: {p}"
        assert p['shown'] <= 430, f"the pane grew to {p['shown']} px"
        assert p['height'] - p['top'] - p['shown'] < 30, f"the pane is not at the newest text: {p}"
        lagging = [s for s in samples if s['height'] > s['shown'] and s['height'] - s['top'] - s['shown'] > 60]
        assert len(lagging) <= 1, f"the pane did not follow the streaming text: {lagging}"
        view.scroll_into_view_if_needed()
        gap = page.evaluate("([v, t]) => t.getBoundingClientRect().bottom - v.getBoundingClientRect().top",
                            [view.element_handle(), box.element_handle()])
        assert gap < 600, f"the text box is {gap:.0f} px below the top of the conversation"
        lab.shot('chat-long-answer', out)


def _first_lines(lab, sel:str, js:str) -> list:
    "For each element matching `sel` for which `js` (e => value) is truthy: (its cell's first source line, the value)."
    return lab.page.evaluate(f"""() => Array.from(document.querySelectorAll({json.dumps(sel)}))
        .map(e => [(e.closest('.jp-CodeCell')?.querySelector('.jp-InputArea-editor')?.innerText || '?').split('\\n')[0],
                   ({js})(e)]).filter(x => x[1])""")


def test_layout_at_1024_and_1440(lab):
    """At 1024 and 1440 px wide: no output wider than its cell, the picker's Hub toggle on one row, the chat's labels
    whole. Screenshots of the chat, the picker and the DPO run at both widths."""
    page = lab.page
    chat = _panel(lab, 'side = Chat(', 'Send')
    if not chat.locator('.widget-inline-hbox', has_text='Max new').first.is_visible():
        chat.get_by_text('Settings', exact=True).first.click()
    try:
        for width in (1024, 1440):
            with _on_failure(page, f'layout-{width}'):
                page.set_viewport_size({'width': width, 'height': 1000})
                time.sleep(1.5)   # JupyterLab lays the panels out again
                # an output wider than its area, or a widget in it reaching past the area's right edge
                wide = _first_lines(lab, '.jp-OutputArea-output', '''e => { const r = e.getBoundingClientRect().right;
                    return Math.round(Math.max(e.scrollWidth - e.clientWidth, ...Array.from(e.querySelectorAll(
                        '.jupyter-widgets')).map(w => w.getBoundingClientRect().right - r), 0)); }''')
                wide = [w for w in wide if w[1] > 1]
                assert not wide, f"{width} px: outputs wider than their cell (cell, px over): {wide}"
                tops = lab.outputs('picker = ModelPicker(').locator('.widget-toggle-buttons button').evaluate_all(
                    "bs => bs.map(b => Math.round(b.getBoundingClientRect().top))")
                assert len(tops) == 2 and len(set(tops)) == 1, f"{width} px: the Hub toggle's buttons at heights {tops}"
                cut = chat.locator('.widget-label, button').evaluate_all(
                    "ls => ls.filter(l => l.offsetParent && l.scrollWidth > l.clientWidth + 1).map(l => l.innerText)")
                assert not cut, f"{width} px: chat labels or buttons cut: {cut}"
                p = _pane(chat.locator('.widget-html').first)
                assert p['height'] - p['top'] - p['shown'] < 30, f"{width} px: the chat's pane left the newest text: {p}"
                hub = lab.outputs('picker = ModelPicker(').locator('.widget-toggle-buttons').first
                label, first = hub.locator('.widget-label').first, hub.locator('button').first
                assert abs(label.bounding_box()['y'] - first.bounding_box()['y']) < 12, f"{width} px: 'Hub' is not beside its buttons"
                lab.shot(f'chat-{width}', chat)
                lab.shot(f'picker-{width}', 'picker = ModelPicker(')
                lab.shot(f'dpo-{width}', 'aligned = dpo(')
    finally: page.set_viewport_size({'width': 1500, 'height': 1100})
