"""The training dashboard's Stop button in a real JupyterLab, clicked in a real browser (headless Chromium, Playwright).

A notebook trains the tiny model for 400 steps (each paced to at least a quarter second, so that a click lands at a
known step), and the test clicks Stop at a step: the button says 'stopping…' at once and turns off, the run ends
within a couple of steps with a checkpoint of its last step, `result.stopped` says where (read from the next cell's
output in the page), and the cell shows its curves once. A second run is stopped before its first step ends (the
first step is slowed): it ends at step 1 with its checkpoint. The click is handled while the training cell runs, on a
kernel subshell (`swiftnb.training.dashboard`); JupyterLab's settings are its defaults.

    python -m pytest tests/e2e/test_training_stop.py -v   # screenshots (1024 and 1440 px wide) in tests/e2e/artifacts/

Needs what tests/e2e/test_jupyterlab.py needs (Debian's chromium and `pip install playwright`), and skips likewise.
"""
import json, re, shutil, tempfile, time
from pathlib import Path
import pytest
from test_jupyterlab import (ARTIFACTS, CHROMIUM, WAIT, Lab, _accept_kernel_dialog, _on_failure, _requirements,
                             _start_lab, _stop, _text, _wait_started)

STEPS = 400
SETUP = """import json, tempfile, time
from pathlib import Path
from transformers import TrainerCallback
from swiftnb.sft import sft
WORK = Path(tempfile.mkdtemp(prefix='swiftnb-stop-'))
rows = [{'messages': [{'role': 'user', 'content': f'What is {i} + {i}?'}, {'role': 'assistant', 'content': f'{2*i}.'}]}
        for i in range(16)]

class Pace(TrainerCallback):
    "Steps of at least `s` seconds, the first `first` seconds longer; `times`: when each step ended."
    def __init__(self, s=0.25, first=0.): self.s, self.first, self.times = s, first, {}
    def on_step_begin(self, args, state, control, **kw): time.sleep(self.first if state.global_step == 0 else 0)
    def on_step_end(self, args, state, control, **kw):
        time.sleep(self.s)
        self.times[state.global_step] = time.time()

def report(name, r, pace):
    ckpts = sorted(p.name for p in r.output_dir.glob('checkpoint-*'))
    print('REPORT', json.dumps(dict(name=name, stopped=r.stopped, step=r.metrics['global_step'], ckpts=ckpts,
                                    times=pace.times, repr=repr(r))))"""
LONG = f"""pace = Pace(0.25)
result = sft('tiny-text', rows, output_dir=WORK/'long', max_steps={STEPS}, save_steps=10, logging_steps=5,
             per_device_train_batch_size=4, max_length=64, callbacks=[pace])
result"""
LONG_REPORT = "report('long', result, pace)"
EARLY = f"""early_pace = Pace(0.25, first=8)
early = sft('tiny-text', rows, output_dir=WORK/'early', max_steps={STEPS}, save_steps=100, logging_steps=5,
            per_device_train_batch_size=4, max_length=64, callbacks=[early_pace])"""
EARLY_REPORT = "report('early', early, early_pace)"


def _notebook(dest:Path):
    cells = [{'cell_type': 'code', 'execution_count': None, 'id': f'stop-{i}', 'metadata': {}, 'outputs': [],
              'source': s.splitlines(keepends=True)} for i, s in enumerate([SETUP, LONG, LONG_REPORT, EARLY, EARLY_REPORT])]
    nb = {'cells': cells, 'metadata': {'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}},
          'nbformat': 4, 'nbformat_minor': 5}
    dest.write_text(json.dumps(nb, indent=1))


@pytest.fixture(scope='module')
def lab():
    "JupyterLab with the notebook open in headless Chromium, Run All Cells started (the tests click while it runs)."
    _requirements()
    from playwright.sync_api import sync_playwright
    root = Path(tempfile.mkdtemp(prefix='swiftnb-e2e-stop-'))
    (root/'nb').mkdir()
    _notebook(root/'nb'/'stop.ipynb')
    proc, url, token = _start_lab(root)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'])
            try:
                page = browser.new_page(viewport={'width': 1440, 'height': 1000})
                page.set_default_timeout(WAIT)
                lab = Lab(page, root)
                with _on_failure(page, 'stop-run-all'):
                    page.goto(f'{url}/lab/tree/stop.ipynb?token={token}')
                    page.wait_for_selector('.jp-Notebook .jp-CodeCell')
                    _accept_kernel_dialog(page)
                    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
                    page.click('.lm-MenuBar-itemLabel:text-is("Run")')
                    page.click('.lm-Menu-itemLabel:text-is("Run All Cells")')
                    _accept_kernel_dialog(page)
                    _wait_started(lab)
                yield lab
            finally: browser.close()
    finally:
        _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def _stop_button(lab, marker:str, timeout_s:float=300):
    "The Stop button of the dashboard in `marker`'s output, once it is shown (after the model and data are loaded)."
    button = lab.outputs(marker).locator('.widget-vbox button', has_text='Stop').first
    button.wait_for(state='visible', timeout=timeout_s*1000)
    return button.element_handle()   # the element itself: its text changes


def _report(lab, marker:str, name:str, timeout_s:float=240) -> dict:
    "What the report cell (`marker`) printed about run `name`, once it has run."
    out = lab.cell(marker).locator('.jp-OutputArea-output', has_text='REPORT').first
    out.wait_for(timeout=timeout_s*1000)
    r = json.loads(re.search(r'REPORT (\{.*\})', _text(out))[1])
    assert r['name'] == name, r
    return r


def _check_stopping(lab, button, clicked:float):
    "The button says 'stopping…' and is off at once, while the cell still runs."
    lab.page.wait_for_function("b => b.innerText.includes('stopping') && b.disabled", arg=button, timeout=3000)
    said = time.time() - clicked
    assert said < 3, f"'stopping…' showed {said:.1f} s after the click"
    return said


def _shots(lab, marker:str, name:str):
    "The dashboard's cell at 1024 and 1440 px wide, into the artefacts folder."
    for width in (1024, 1440):
        lab.page.set_viewport_size({'width': width, 'height': 1000})
        time.sleep(0.5)   # JupyterLab lays the notebook out again
        lab.shot(f'{name}-{width}', marker)
    lab.page.set_viewport_size({'width': 1440, 'height': 1000})


def test_stop_at_a_step_ends_the_run_with_its_checkpoint(lab):
    page, marker = lab.page, "result = sft("
    with _on_failure(page, 'stop-at-a-step'):
        button = _stop_button(lab, marker)
        status = lab.outputs(marker).locator('.widget-vbox .widget-html').first.element_handle()
        page.wait_for_function("e => +((e.innerText.match(/step (\\d+)\\//) || [])[1] || 0) >= 15", arg=status, timeout=120_000)
        assert lab.cell(marker).locator('.jp-InputPrompt').inner_text().strip() == '[*]:', 'the training cell still runs'
        clicked = time.time()
        button.click()
        said = _check_stopping(lab, button, clicked)
        r = _report(lab, 'report(\'long\'', 'long')
        times = {int(k): v for k, v in r['times'].items()}
        at_click = max(s for s, t in times.items() if t <= clicked)   # the last step that had ended when Stop was clicked
        n = r['stopped']
        assert n == r['step'] and n < STEPS, r
        assert at_click < n <= at_click + 2, f"clicked after step {at_click}, stopped at step {n}"
        assert f'checkpoint-{n}' in r['ckpts'], r['ckpts']
        assert f'stopped at step {n}' in r['repr'], r['repr']
        out = lab.cell(marker).locator('.jp-OutputArea')
        text = _text(out)
        assert f'stopped at step {n} (Stop): checkpoint-{n} is saved' in text, text[-2000:]
        assert f'stopped at step {n}' in text.split('(Stop)')[-1], 'the result shown below says it stopped'
        assert button.is_disabled() and button.inner_text().strip() == 'stopped', button.inner_text()
        imgs = out.locator('img')
        assert imgs.count() == 1, f"the curves are drawn {imgs.count()} times in the cell"   # the dashboard's, not again
        assert imgs.first.evaluate("i => i.complete && i.naturalWidth > 200"), 'the curves are drawn'
        print(f"\nclicked after step {at_click}, 'stopping…' after {said:.2f} s, stopped at step {n}")
        _shots(lab, marker, 'stop-dashboard')


def test_stop_before_the_first_step(lab):
    page, marker = lab.page, "early = sft("
    with _on_failure(page, 'stop-before-first-step'):
        button = _stop_button(lab, marker)
        clicked = time.time()
        button.click()
        _check_stopping(lab, button, clicked)
        r = _report(lab, "report('early'", 'early')
        assert min(float(t) for t in r['times'].values()) > clicked, 'the click came before the first step ended'
        assert (r['stopped'], r['step']) == (1, 1), r
        assert 'checkpoint-1' in r['ckpts'], r['ckpts']
        assert button.is_disabled() and button.inner_text().strip() == 'stopped'
        broken = lab.outputs(marker).locator('img').evaluate_all(
            "is => is.filter(i => i.offsetParent !== null && !(i.complete && i.naturalWidth > 0)).length")
        assert broken == 0, 'a broken image shows in the dashboard'
        _shots(lab, marker, 'stop-early-dashboard')
