"Shared by the compat tests: a tiny model vLLM's CPU build can run."
import json, shutil
from pathlib import Path

def tiny_qwen2_hd64(path: Path) -> Path:
    "The tiny text model with 64-wide attention heads (vLLM's CPU attention has no kernel for make_tiny's 16-wide ones), with make_tiny's tokenizer and chat template."
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from swiftnb.core import make_tiny
    src = make_tiny('text')
    cfg = json.loads((src/'config.json').read_text())
    cfg.update(hidden_size=128, intermediate_size=256, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512)
    torch.manual_seed(0)
    m = Qwen2ForCausalLM(Qwen2Config(**{k: v for k, v in cfg.items() if k not in ('architectures', 'transformers_version')}))
    m.save_pretrained(path)
    for f in src.iterdir():
        if f.name.startswith(('tokenizer', 'chat_template', 'generation_config')): shutil.copy(f, path/f.name)
    return path

def tiny_qwen2_audio_hd64(path: Path) -> Path:
    "make_tiny's Qwen2-Audio with 64-wide attention heads in its language model (vLLM's CPU attention has no kernel for 16-wide ones)."
    import torch
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration
    from swiftnb.core import make_tiny
    src = make_tiny('audio')
    cfg = json.loads((src/'config.json').read_text())
    cfg['text_config'].update(hidden_size=128, intermediate_size=256, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512)
    torch.manual_seed(0)
    m = Qwen2AudioForConditionalGeneration(Qwen2AudioConfig(**{k: v for k, v in cfg.items() if k not in ('architectures', 'transformers_version')}))
    m.save_pretrained(path)
    for f in src.iterdir():
        if f.name.startswith(('tokenizer', 'chat_template', 'generation_config', 'processor_config')): shutil.copy(f, path/f.name)
    return path

def tiny_qwen2_vl_hd64(path: Path) -> Path:
    """make_tiny's Qwen2-VL with 64-wide attention heads in its language model (vLLM's CPU attention has no kernel for 16-wide ones).

    Plus the video processor config a hub Qwen2-VL folder has: vLLM builds the full Qwen2-VL processor, video part included,
    where swiftnb's image-only processor (used without torchvision) saves none."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from swiftnb.core import make_tiny
    src = make_tiny('vision')
    cfg = json.loads((src/'config.json').read_text())
    cfg['text_config'].update(hidden_size=128, intermediate_size=256, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512)
    cfg['text_config']['rope_parameters']['mrope_section'] = [8, 12, 12]   # halves of the 64-wide head: 32 = 8 + 12 + 12
    cfg['vision_config']['hidden_size'] = 128                              # the merger's output: the language model's width
    torch.manual_seed(0)
    m = Qwen2VLForConditionalGeneration(Qwen2VLConfig(**{k: v for k, v in cfg.items() if k not in ('architectures', 'transformers_version')}))
    m.save_pretrained(path)
    for f in src.iterdir():
        if f.name.startswith(('tokenizer', 'chat_template', 'generation_config', 'processor_config')): shutil.copy(f, path/f.name)
    ip = json.loads((src/'processor_config.json').read_text())['image_processor']
    video = {k: ip[k] for k in ('do_convert_rgb', 'do_normalize', 'do_rescale', 'do_resize', 'image_mean', 'image_std', 'merge_size',
                                'patch_size', 'resample', 'rescale_factor', 'temporal_patch_size')}
    (path/'video_preprocessor_config.json').write_text(json.dumps({**video, 'video_processor_type': 'Qwen2VLVideoProcessor'}, indent=2))
    return path

def run_vllm_side(side:str, spec:dict, tmp_path:Path, timeout:int=1200) -> dict:
    """Run script `side` in vLLM's environment (SWIFTNB_VLLM_PYTHON) with this checkout's swiftnb and a small KV cache: it reads
    `spec` (JSON) from argv[1] and writes its results (JSON) to argv[2], which are returned. A script that starts vLLM's engine
    does so under `if __name__ == '__main__'` (vLLM spawns its engine process)."""
    import os, subprocess, time
    root = Path(__file__).resolve().parents[2]
    (tmp_path/'spec.json').write_text(json.dumps(spec)); (tmp_path/'side.py').write_text(side)
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(root), *[p for p in [os.environ.get('PYTHONPATH')] if p]]),
           'VLLM_CPU_KVCACHE_SPACE': os.environ.get('VLLM_CPU_KVCACHE_SPACE', '1'), 'TOKENIZERS_PARALLELISM': 'false'}
    t = time.time()
    r = subprocess.run([os.environ['SWIFTNB_VLLM_PYTHON'], str(tmp_path/'side.py'), str(tmp_path/'spec.json'), str(tmp_path/'res.json')],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    res = json.loads((tmp_path/'res.json').read_text())
    print(f"vLLM side {time.time() - t:.0f} s (start {res.get('start_s', float('nan')):.0f} s)")
    return res

# The start of a script run by run_vllm_side: `err(f)` gives [type, message] of what f raises
SIDE_HEAD = r'''
import json, sys, time
def err(f):
    try: f()
    except Exception as e: return [type(e).__name__, str(e)]
'''
