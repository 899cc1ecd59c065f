"""Export on a GPU at a real model's shape: merge a LoRA fine-tune and verify it, then quantize with each method and record
size on disk before/after and time. Random weights of Qwen2.5's exact shapes (with swiftnb's tiny tokenizer, so the
embeddings are small and the sizes are those of the transformer layers); perplexities of random weights mean nothing and are
not reported. Usage (GPU): python bench/export_quant.py [--model Qwen2.5-1.5B-Instruct] [--out bench/export_quant.json]
GPTQ/AWQ run through llm-compressor in the interpreter named by SWIFTNB_LLMC_PYTHON (its own environment) when set."""
import argparse, json, os, time, tempfile
from pathlib import Path
import torch
from swiftnb.core import make_random, device_info
from swiftnb.sft import sft
from swiftnb.export import merge, quantize

ap = argparse.ArgumentParser()
ap.add_argument('--model', default='Qwen2.5-1.5B-Instruct')
ap.add_argument('--out', default='bench/export_quant.json')
ap.add_argument('--methods', nargs='*', default=None, help='only these methods (e.g. awq)')
a = ap.parse_args()
tmp = Path(tempfile.mkdtemp())
base = make_random(a.model, tmp/'base', dtype='bfloat16')
rows = [{'messages': [{'role': 'user', 'content': f'Question {i}: what is {i} times {i+1}?'}, {'role': 'assistant', 'content': f'{i*(i+1)}.'}]} for i in range(64)]
res = dict(model=a.model, device=str(device_info()), card=torch.cuda.get_device_name(), date=time.strftime('%Y-%m-%d'), runs=[])
r = sft(str(base), rows, output_dir=tmp/'lora', max_steps=20, learning_rate=1e-3, per_device_train_batch_size=8, report_to='none', dashboard=False, save_steps=1000)
t0 = time.time(); m = merge(tmp/'lora', prompts=[x['messages'][0]['content'] for x in rows[:4]])
res['merge'] = dict(seconds=round(time.time() - t0, 1), size_gib=round(m.size_gib, 3), max_logit_diff=m.report.max_logit_diff,
                    logit_tol=m.report.logit_tol, agreement=m.report.agreement, ok=m.report.ok)
print(m, flush=True)
llmc = os.environ.get('SWIFTNB_LLMC_PYTHON')
for method, bits in [('bnb', 4), ('bnb', 8)] + ([('fp8', 8), ('gptq', 4), ('awq', 4)] if llmc else []):
    if a.methods and method not in a.methods: continue
    t0 = time.time()
    try:
        q = quantize(m.path, method, bits, calibration=rows, save_dir=tmp/f'{method}{bits}', prompts=[x['messages'][0]['content'] for x in rows[:4]],
                     python=llmc, max_length=256)
        res['runs'].append(dict(method=method, bits=bits, seconds=round(time.time() - t0, 1), size_before_gib=round(q.size_before_gib, 3),
                                size_gib=round(q.size_gib, 3), ratio=round(q.size_gib / q.size_before_gib, 3), agreement=q.report.agreement,
                                stops_ok=q.report.stops_ok, template_ok=q.report.template_ok))
        print(q, flush=True)
    except Exception as e:   # recorded, not hidden: the table says which method failed on this card and why
        res['runs'].append(dict(method=method, bits=bits, error=f"{type(e).__name__}: {str(e)[:500]}"))
        print(method, bits, 'FAILED', e, flush=True)
Path(a.out).parent.mkdir(parents=True, exist_ok=True)
Path(a.out).write_text(json.dumps(res, indent=1, default=str))
print(json.dumps(res, indent=1, default=str))
