"""How evenly the rows of a step are spread over data-parallel processes: a random deal (the Trainer's default),
transformers' `BatchRebalanceSampler`, and swiftnb's `token_balanced_sampler` (what `sft` uses with packing over several
processes). No GPU: it counts tokens.

    python bench/rank_balance.py [--world 2] [--batch 32] [--steps 200] [--out bench/rank_balance.json]

Rows: bench/sft_speed.py's chat lengths (log-normal, median 300 tokens, capped at 1984), the lengths those rows are drawn with.
Default: a shuffled sampler, batches of --batch rows, batch k of a step to process k (what accelerate's BatchSamplerShard does).
Rebalance: `BatchRebalanceSampler(lengths, batch*world, world, 1, rank=r)`, each process's own micro-batches (it balances
padded cost, batch x longest row, with micro-batches of varying size).
Token-balanced: `token_balanced_sampler(lengths, batch, world, r)`: longest first to the micro-batch with the fewest tokens.
With packing a step's time on a process grows with its tokens, and every process waits for the slowest at the gradient
all-reduce, so the ceiling on scaling is world × mean tokens / max tokens per step (summed over the steps)."""
import argparse, json, math, random, time
import torch
from transformers.trainer_pt_utils import BatchRebalanceSampler
from swiftnb.sft import token_balanced_sampler

ap = argparse.ArgumentParser(); ap.add_argument('--world', type=int, default=2); ap.add_argument('--batch', type=int, default=32)
ap.add_argument('--steps', type=int, default=200); ap.add_argument('--out', default='bench/rank_balance.json')
a = ap.parse_args()
rnd = random.Random(0)
n = a.batch * a.world * a.steps
lengths = [min(2048 - 64, int(rnd.lognormvariate(math.log(300), 0.75))) for _ in range(n)]

def ceiling(per_step):   # per_step: [[tokens of process r] for each step]
    return a.world * sum(sum(s) / a.world for s in per_step) / sum(max(s) for s in per_step)

order = torch.randperm(n, generator=torch.Generator().manual_seed(42)).tolist()
batches = [order[i:i + a.batch] for i in range(0, n, a.batch)]
default = [[sum(lengths[i] for i in batches[s * a.world + r]) for r in range(a.world)] for s in range(a.steps)]
per_rank = [list(BatchRebalanceSampler(lengths, a.batch * a.world, a.world, 1, rank=r)) for r in range(a.world)]
rebal = [[sum(lengths[i] for i in per_rank[r][s]) for r in range(a.world)] for s in range(a.steps)]
rows_rebal = [len(per_rank[r][s]) for r in range(a.world) for s in range(a.steps)]
tb = [list(token_balanced_sampler(lengths, a.batch, a.world, r)) for r in range(a.world)]
tok = [[sum(lengths[i] for i in tb[r][s]) for r in range(a.world)] for s in range(a.steps)]
res = dict(date=time.strftime('%Y-%m-%d'), command='python bench/rank_balance.py', world=a.world, rows_per_process=a.batch, steps=a.steps,
           mean_tokens_per_process_step=round(sum(lengths) / (a.world * a.steps)),
           default=dict(scaling_ceiling=round(ceiling(default), 3), worst_step_max_over_mean=round(max(max(s) * a.world / sum(s) for s in default), 3)),
           rebalance=dict(scaling_ceiling=round(ceiling(rebal), 3), worst_step_max_over_mean=round(max(max(s) * a.world / sum(s) for s in rebal), 3),
                          rows_per_micro_batch=[min(rows_rebal), max(rows_rebal)]),
           token_balanced=dict(scaling_ceiling=round(ceiling(tok), 3), worst_step_max_over_mean=round(max(max(s) * a.world / sum(s) for s in tok), 3)))
print(json.dumps(res, indent=1)); open(a.out, 'w').write(json.dumps(res, indent=1))
