"""EvalScope, for real: `evaluate(..., backend='evalscope')` and `swiftnb eval --eval_dataset` in EvalScope's own environment.

EvalScope pins an older `datasets` than swiftnb's, so it lives in an environment of its own (SWIFTNB_EVALSCOPE_PYTHON; `tools/fresh.sh
compat` builds it). The tiny text model is fully fine-tuned here on capitals and served by `swiftnb.serve` (the embedded server, an
OpenAI-compatible API); EvalScope calls it on a local copy of its `general_qa` benchmark (no download: `dataset_args` with
`local_path`) and scores the answers itself. The tuned model's ROUGE-L recall must be near 1 and the base model's near 0, read
from the EvalResult that swiftnb builds from EvalScope's report. EvalScope's BLEU needs nltk's punkt_tab data, a download: offline
it logs an error and reports 0 for every row, so swiftnb leaves BLEU out, with a warning (checked here where punkt_tab is missing). The VLMEvalKit path (textvqa, coco_caption) is not run: it needs
`evalscope[vlmeval]` and the benchmarks' downloads. Skipped when SWIFTNB_EVALSCOPE_PYTHON is not set.
"""
import os, json, subprocess, time
from pathlib import Path
import pytest

ES_PY = os.environ.get('SWIFTNB_EVALSCOPE_PYTHON')
pytestmark = pytest.mark.skipif(not ES_PY, reason='SWIFTNB_EVALSCOPE_PYTHON (an environment with evalscope) is not set')
ROOT = Path(__file__).resolve().parents[2]
ROUGE_L = 'rouge:mean[statistic="recall",variant="l"]'

# Runs in EvalScope's environment: swiftnb's evaluate, then its CLI, against the served models
SIDE = r'''
import json, sys
spec = json.loads(open(sys.argv[1]).read()); res = {}
import warnings
from swiftnb.eval import evaluate, eval_cmd
from swiftnb.eval.evalscope import _punkt
res['punkt'] = _punkt()
for name, url in spec['servers'].items():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        r = evaluate(name, backend='evalscope', datasets=['general_qa'], api_url=url, dataset_args=spec['dataset_args'],
                     work_dir=spec['work'] + '/' + name, max_new_tokens=16)
    res[name] = dict(scores=r.scores, rows=r.rows, dataset=r.dataset, info=r.info, warnings=[str(x.message) for x in w])
r = eval_cmd(['--model', 'tuned', '--eval_dataset', 'general_qa', '--eval_url', spec['servers']['tuned'], '--dataset_args',
              json.dumps(spec['dataset_args']), '--eval_output_dir', spec['work'] + '/cli', '--max_new_tokens', '16'])
res['cli'] = r.scores
json.dump(res, open(sys.argv[2], 'w'))
'''

def test_evalscope_scores_a_served_model(tmp_path):
    r = subprocess.run([ES_PY, '-c', 'import evalscope, swiftnb.eval'], capture_output=True, text=True,
                       env={**os.environ, 'PYTHONPATH': str(ROOT)})
    if r.returncode:
        pytest.fail(f"EvalScope's environment ({ES_PY}) cannot import evalscope and swiftnb.eval: `{Path(ES_PY).parent}/pip install "
                    f"evalscope fastcore` and swiftnb with --no-deps (tools/fresh.sh compat does).\n{r.stderr[-2000:]}")
    from swiftnb.sft import sft
    from swiftnb.serve import serve
    pairs = [('France', 'Paris'), ('Japan', 'Tokyo'), ('Italy', 'Rome'), ('Spain', 'Madrid'), ('Egypt', 'Cairo'), ('Peru', 'Lima')]
    qa = [{'messages': [{'role': 'user', 'content': f'What is the capital of {c}?'}, {'role': 'assistant', 'content': f'{k}.'}]} for c, k in pairs]
    sft('tiny-text', qa, output_dir=tmp_path/'full', tuner='full', max_steps=120, learning_rate=3e-3, per_device_train_batch_size=3,
        save_steps=1000, report_to='none', dashboard=False, warmup_ratio=0.)
    data = tmp_path/'data'; data.mkdir()   # EvalScope's general_qa: a folder of <subset>.jsonl files, query and response
    (data/'capitals.jsonl').write_text('\n'.join(json.dumps({'query': q['messages'][0]['content'], 'response': q['messages'][1]['content']}) for q in qa))
    dargs = {'general_qa': {'local_path': str(data), 'subset_list': ['capitals']}}
    with serve(tmp_path/'full', backend='transformers', port=0, model_name='tuned') as tuned, \
         serve('tiny-text', backend='transformers', port=0, model_name='base') as base:
        spec = dict(servers={'tuned': tuned.url + '/v1/chat/completions', 'base': base.url + '/v1/chat/completions'},
                    dataset_args=dargs, work=str(tmp_path/'es'))
        (tmp_path/'spec.json').write_text(json.dumps(spec))
        t = time.time()
        r = subprocess.run([ES_PY, '-c', SIDE, str(tmp_path/'spec.json'), str(tmp_path/'res.json')], capture_output=True, text=True, timeout=900,
                           env={**os.environ, 'PYTHONPATH': str(ROOT), 'HF_HUB_OFFLINE': '1'}, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    res = json.loads((tmp_path/'res.json').read_text())
    print(f"EvalScope side {time.time() - t:.0f} s: tuned {res['tuned']['scores']}")
    key = f'general_qa/{ROUGE_L}'
    assert res['tuned']['scores'][key] >= 0.8, res['tuned']['scores']      # the tuned model names the capitals
    assert res['base']['scores'][key] <= 0.2, res['base']['scores']        # the random-weight base does not
    rows = {x['metric']: x for x in res['tuned']['rows']}
    assert rows[ROUGE_L]['num'] == len(qa) and rows[ROUGE_L]['benchmark'] == 'general_qa', rows   # every row scored, names readable
    assert res['tuned']['info']['backend'] == 'evalscope' and res['tuned']['dataset'] == 'general_qa'
    assert res['cli'][key] == res['tuned']['scores'][key], (res['cli'], res['tuned']['scores'])    # swiftnb eval: the same run
    if not res['punkt']:   # offline, EvalScope's BLEU would be 0 for every row: left out, with a warning, not reported as a score
        assert not any('bleu' in k for k in res['tuned']['scores']), res['tuned']['scores']
        assert any("BLEU scores are left out" in m for m in res['tuned']['warnings']), res['tuned']['warnings']
