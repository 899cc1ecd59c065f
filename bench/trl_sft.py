"""The same LoRA run through trl's `SFTTrainer` (issue 31: "SFT on trl's SFTTrainer?"), for bench/train_speed.py's
'trl SFTTrainer' row: the field's trainer, set up as a skilled trl user would for this workload.

- the model loaded by `swiftnb.core.load_model` with the attention swiftnb's plan picked (on a GPU `varlen`, which keeps
  the rows of a padding-free batch apart; sdpa would let them see each other), so the two rows differ by the trainer;
- LoRA r 8, alpha 32, dropout 0.05 on every linear layer (peft's `LoraConfig`, handed to SFTTrainer);
- `SFTConfig(padding_free=True)`, 32 rows per step in one flattened batch (what swiftnb's pack of 32 rows is), Liger
  kernels (`use_liger_kernel`), gradient checkpointing, bf16, the loss on the answers only (prompt-completion rows);
  trl enforces no `max_length` on padding-free batches without its own packing, so rows are not cut (the benchmark's
  rows: one of 192 is over 2,048 tokens, by 64; swiftnb cuts it);
- the rows of the benchmark, as conversational prompt-completion pairs.

    python bench/trl_sft.py --smoke     # a few steps on swiftnb's tiny text model (runs on a CPU)
"""
import argparse, tempfile, time


def trl_sft_run(model_dir:str, data:list, steps:int, callbacks=(), rows_per_step:int=32,
                attn_impl:str|None=None, liger:bool|None=None, lr:float=1e-4):
    "Train `model_dir` on chat `data` through trl's SFTTrainer; returns the losses and the settings it ran with."
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer
    from swiftnb.core import load_model
    gpu = torch.cuda.is_available()
    attn = attn_impl or ('varlen' if gpu else 'sdpa')
    liger = gpu if liger is None else liger
    model, proc = load_model(model_dir, attn_impl=attn)
    pairs = Dataset.from_list([{'prompt': r['messages'][:-1], 'completion': r['messages'][-1:]} for r in data])
    cfg = SFTConfig(output_dir=tempfile.mkdtemp(), max_steps=steps, per_device_train_batch_size=rows_per_step,
                    gradient_accumulation_steps=1, learning_rate=lr, lr_scheduler_type='cosine', warmup_steps=1,
                    padding_free=True, max_length=None, completion_only_loss=True, use_liger_kernel=liger,
                    gradient_checkpointing=True, bf16=gpu, logging_steps=1, save_strategy='no', report_to='none',
                    include_num_input_tokens_seen=True, dataloader_num_workers=0, seed=42)
    peft = LoraConfig(r=8, lora_alpha=32, lora_dropout=0.05, target_modules='all-linear', task_type='CAUSAL_LM')
    tr = SFTTrainer(model=model, args=cfg, train_dataset=pairs, processing_class=proc, peft_config=peft,
                    callbacks=list(callbacks))
    t = time.perf_counter()
    tr.train()
    losses = [h['loss'] for h in tr.state.log_history if 'loss' in h]
    return dict(losses=losses, seconds=time.perf_counter() - t, attn_impl=attn, use_liger=liger, packing=True,
                gradient_checkpointing=True, batch=rows_per_step, accum=1, trainer='trl.SFTTrainer')


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--smoke', action='store_true', help="a few steps on swiftnb's tiny text model")
    a = ap.parse_args()
    from sft_speed import rows
    from swiftnb.core import make_tiny
    r = trl_sft_run(str(make_tiny('text')), rows(32, max_tokens=256), 4, rows_per_step=8, lr=1e-2)
    print(r)
    assert r['losses'][-1] < r['losses'][0], r['losses']
