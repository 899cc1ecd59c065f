"""Compare `swiftnb.core.estimate_memory` with the GPU peaks in bench/memory_calibration.json and write
bench/memory_calibration.md (the table the core notebook's test also checks: every row within +-20%).

    python bench/memory_calibration_check.py
"""
import json
from pathlib import Path
from swiftnb.core import calibration_table

here = Path(__file__).parent
meta = json.loads((here/'memory_calibration.json').read_text())['meta']
rows = calibration_table(here/'memory_calibration.json')
lines = ["# Memory estimate vs measured peak", "",
         f"Measured {meta['date'][:10]} on an **{meta['card']}** (torch {meta['versions']['torch']}, transformers "
         f"{meta['versions']['transformers']}, peft {meta['versions']['peft']}), random-weight Qwen2.5-shaped models, "
         "LoRA r8 on all linear layers (alpha 32, dropout 0.05) or full fine-tuning, bf16, sdpa, AdamW, 3 steps each.",
         "", "Measured with `python3 bench/memory_calibration.py --out-dir $OUT` on the GPU machine (raw data and "
         "per-phase peaks: `memory_calibration.json`, `memory_calibration_measured.md`); compared with "
         "`python bench/memory_calibration_check.py`. The estimate is compared with the allocator's peak reserved memory "
         "(what must be free on the device).", "",
         "| configuration | measured peak reserved GiB | `estimate_memory` GiB | error |", "|---|---|---|---|"]
lines += [f"| {n} | {m:.2f} | {e:.2f} | {err:+.1%} |" for n, m, e, err in rows]
worst = max(abs(r[3]) for r in rows)
lines += ["", f"Largest error: {worst:.1%} (target: within 20%)."]
(here/'memory_calibration.md').write_text('\n'.join(lines) + '\n')
print('\n'.join(lines))
