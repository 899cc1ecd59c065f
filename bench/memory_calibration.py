"""Measure real peak GPU memory of LoRA / full fine-tuning steps, to calibrate `estimate_memory`.

Builds Qwen2.5-shaped models from configs (random weights, nothing downloaded), runs 3 training
steps per configuration (forward with labels -> HF's internal loss, backward, AdamW step,
zero_grad(set_to_none=True)) and records memory with torch.cuda's allocator statistics.

Each configuration runs in its own subprocess (this script re-invokes itself with `--one JSON`),
so numbers are clean and an OOM is recorded instead of ending the run.

Usage:
    python3 bench/memory_calibration.py --out-dir "$OUT"     # GPU run, all configs
    python3 bench/memory_calibration.py --cpu-smoke           # tiny shape on CPU, checks the logic

Needs only torch, transformers and peft.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import subprocess
import sys
import time

GIB = 1024**3

SHAPES = {
    "0.5B": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "1.5B": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "7B": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
    # for --cpu-smoke only
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=1000, tie_word_embeddings=True),
}

# (tuner, shape, batch, seq, gc)
GPU_CONFIGS = [
    ("lora", "0.5B", 1, 2048, True), ("lora", "0.5B", 1, 2048, False),
    ("lora", "0.5B", 4, 2048, True), ("lora", "0.5B", 4, 2048, False),
    ("lora", "1.5B", 1, 2048, True), ("lora", "1.5B", 1, 2048, False),
    ("lora", "1.5B", 4, 2048, True), ("lora", "1.5B", 4, 2048, False),
    ("lora", "1.5B", 8, 1024, True), ("lora", "1.5B", 1, 512, False),
    ("lora", "7B", 1, 2048, True), ("lora", "7B", 1, 2048, False),
    ("lora", "7B", 4, 2048, True), ("lora", "7B", 4, 2048, False),
    ("lora", "7B", 1, 512, False),
    ("full", "0.5B", 1, 2048, True), ("full", "0.5B", 1, 2048, False),
    ("full", "1.5B", 1, 2048, True), ("full", "1.5B", 4, 2048, True),
]

SMOKE_CONFIGS = [
    ("lora", "tiny", 2, 64, True), ("lora", "tiny", 2, 64, False),
    ("full", "tiny", 2, 64, True), ("full", "tiny", 1, 32, False),
]

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
N_STEPS = 3


# ----------------------------------------------------------------------------- one configuration
def run_one(cfg: dict) -> dict:
    """Run one configuration in this process and return its record."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, Qwen2Config

    cpu = cfg.get("device", "cuda") == "cpu"
    dev = torch.device("cpu" if cpu else "cuda")
    cuda = not cpu

    rec = dict(tuner=cfg["tuner"], shape=cfg["shape"], batch=cfg["batch"], seq=cfg["seq"], gc=cfg["gc"],
               status="ok", device_name="cpu" if cpu else torch.cuda.get_device_name(0),
               torch=torch.__version__, transformers=transformers.__version__)
    try:
        import peft
        rec["peft"] = peft.__version__
    except Exception:  # noqa: BLE001
        rec["peft"] = None

    def alloc():
        return torch.cuda.memory_allocated() / GIB if cuda else float("nan")

    def peak():
        return torch.cuda.max_memory_allocated() / GIB if cuda else float("nan")

    def reset_peak():
        if cuda:
            torch.cuda.reset_peak_memory_stats()

    def sync():
        if cuda:
            torch.cuda.synchronize()

    torch.manual_seed(0)
    shape = SHAPES[cfg["shape"]]
    config = Qwen2Config(**shape, max_position_embeddings=32768, rope_theta=1e6, rms_norm_eps=1e-6)
    config._attn_implementation = "sdpa"
    rec["rope"] = str(getattr(config, "rope_parameters", None) or getattr(config, "rope_theta", None))

    dtype_kw = "dtype"
    max_peaks = {"reserved": 0.0}
    try:
        # ---- build the model directly on the device (random init)
        with torch.device(dev):
            try:
                model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16, attn_implementation="sdpa")
            except TypeError:
                dtype_kw = "torch_dtype"
                model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16,
                                                         attn_implementation="sdpa")
        rec["dtype_kwarg"] = dtype_kw
        built_dtype = next(model.parameters()).dtype
        rec["built_dtype"] = str(built_dtype)
        if built_dtype != torch.bfloat16:
            model.to(torch.bfloat16)
        model.to(dev)
        rec["attn_impl"] = getattr(model.config, "_attn_implementation", None)
        rec["use_cache"] = getattr(model.config, "use_cache", None)
        model.train()
        base = model
        sync()
        rec["base_weights_gib"] = alloc()

        if cfg["gc"]:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if cfg["tuner"] == "lora":
            from peft import LoraConfig, get_peft_model
            if cfg["gc"]:
                model.enable_input_require_grads()
            lcfg = LoraConfig(r=8, lora_alpha=32, target_modules=LORA_TARGETS, lora_dropout=0.05,
                              task_type="CAUSAL_LM")
            model = get_peft_model(model, lcfg)
            model.train()
        else:
            for p in model.parameters():
                p.requires_grad_(True)

        trainable = [p for p in model.parameters() if p.requires_grad]
        rec["total_params"] = sum(p.numel() for p in model.parameters())
        rec["base_params"] = sum(p.numel() for n, p in base.named_parameters() if not any(
            k in n for k in ("lora_A", "lora_B"))) if cfg["tuner"] == "lora" else rec["total_params"]
        rec["trainable_params"] = sum(p.numel() for p in trainable)
        rec["trainable_dtypes"] = sorted({str(p.dtype) for p in trainable})
        rec["adapter_dtype"] = rec["trainable_dtypes"][0] if cfg["tuner"] == "lora" else None
        rec["trainable_bytes_gib"] = sum(p.numel() * p.element_size() for p in trainable) / GIB
        sync()
        rec["weights_gib"] = alloc()  # after model build (+ adapters), before optimizer

        opt = torch.optim.AdamW(trainable)

        # memory at the input of lm_head (all decoder activations already saved at this point)
        lm_head = base.get_output_embeddings()
        at_head = {}

        def _pre_hook(_m, _inp):
            at_head["alloc"] = alloc()

        h = lm_head.register_forward_pre_hook(_pre_hook)

        gen = torch.Generator(device="cpu").manual_seed(0)
        input_ids = torch.randint(0, shape["vocab_size"], (cfg["batch"], cfg["seq"]), generator=gen).to(dev)
        labels = input_ids.clone()

        reset_peak()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        step_times, steps = [], []
        for step in range(N_STEPS):
            s = {}
            sync()
            t0 = time.perf_counter()
            reset_peak()
            s["before_fwd_alloc_gib"] = alloc()
            out = model(input_ids=input_ids, labels=labels)
            loss = out.loss
            sync()
            s["fwd_peak_gib"] = peak()
            s["after_fwd_alloc_gib"] = alloc()
            s["at_lm_head_alloc_gib"] = at_head.get("alloc", float("nan"))
            if step == 0:
                rec["logits_dtype"] = str(out.logits.dtype)
                rec["loss_dtype"] = str(loss.dtype)
                rec["logits_shape"] = list(out.logits.shape)
            del out
            s["after_fwd_del_out_alloc_gib"] = alloc()
            reset_peak()
            loss.backward()
            sync()
            s["bwd_peak_gib"] = peak()
            del loss
            s["after_bwd_alloc_gib"] = alloc()
            reset_peak()
            opt.step()
            sync()
            s["opt_peak_gib"] = peak()
            opt.zero_grad(set_to_none=True)
            sync()
            s["after_step_alloc_gib"] = alloc()
            step_times.append(time.perf_counter() - t0)
            if cuda:
                max_peaks["reserved"] = max(max_peaks["reserved"], torch.cuda.max_memory_reserved() / GIB)
            steps.append(s)
        h.remove()

        rec["steps"] = steps
        rec["step_times_s"] = step_times
        rec["step_s"] = sum(step_times[1:]) / len(step_times[1:])
        rec["peak_alloc_gib"] = max(max(s["fwd_peak_gib"], s["bwd_peak_gib"], s["opt_peak_gib"]) for s in steps)
        rec["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / GIB if cuda else float("nan")
        # a handy split for the estimator (step 3, steady state: optimizer states exist)
        last = steps[-1]
        rec["optimizer_state_gib"] = last["after_step_alloc_gib"] - rec["weights_gib"]
        rec["fwd_activation_gib"] = last["at_lm_head_alloc_gib"] - last["before_fwd_alloc_gib"]
        rec["logits_loss_fwd_gib"] = last["fwd_peak_gib"] - last["at_lm_head_alloc_gib"]
        rec["logits_bf16_theory_gib"] = cfg["batch"] * cfg["seq"] * shape["vocab_size"] * 2 / GIB
        rec["peak_phase"] = max(("fwd", last["fwd_peak_gib"]), ("bwd", last["bwd_peak_gib"]),
                                ("opt", last["opt_peak_gib"]), key=lambda kv: kv[1])[0]
    except torch.OutOfMemoryError as e:  # noqa: F841
        rec["status"] = "OOM"
        rec["error"] = str(e).splitlines()[0][:300]
        rec["peak_alloc_gib"] = peak()
        rec["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / GIB if cuda else float("nan")
    except Exception as e:  # noqa: BLE001
        import traceback
        rec["status"] = f"error: {type(e).__name__}"
        rec["error"] = traceback.format_exc()[-2000:]
    if cuda:
        rec["total_gpu_gib"] = torch.cuda.get_device_properties(0).total_memory / GIB
    gc.collect()
    return rec


# ----------------------------------------------------------------------------- driver
def run_all(configs, device: str, out_dir: str, timeout_s: int) -> list[dict]:
    os.makedirs(out_dir, exist_ok=True)
    jsonl = os.path.join(out_dir, "memory_calibration.jsonl")
    open(jsonl, "w").close()
    records = []
    for tuner, shape, b, s, gc_on in configs:
        cfg = dict(tuner=tuner, shape=shape, batch=b, seq=s, gc=gc_on, device=device)
        t0 = time.time()
        try:
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", json.dumps(cfg)],
                               capture_output=True, text=True, timeout=timeout_s)
            lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
            if lines:
                rec = json.loads(lines[-1][len("RESULT "):])
            else:
                rec = dict(cfg, status=f"crash rc={p.returncode}", error=(p.stderr or "")[-2000:])
        except subprocess.TimeoutExpired:
            rec = dict(cfg, status=f"timeout>{timeout_s}s")
        rec["wall_s"] = round(time.time() - t0, 1)
        records.append(rec)
        with open(jsonl, "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"[{len(records)}/{len(configs)}] {fmt_row(rec)}  wall={rec['wall_s']}s", flush=True)
        if rec["status"].startswith(("error", "crash")):
            print(rec.get("error", ""), flush=True)
    return records


def _f(x, nd=2):
    if x is None:
        return "-"
    if isinstance(x, float):
        return "nan" if x != x else f"{x:.{nd}f}"
    return str(x)


HEADER = ("| tuner | shape | batch | seq | gc | total params | trainable | adapter dtype | weights GiB "
          "| peak alloc GiB | peak reserved GiB | step s | peak phase | logits+loss fwd GiB | status |")


def fmt_row(r: dict) -> str:
    return "| " + " | ".join([
        r.get("tuner", "-"), r.get("shape", "-"), _f(r.get("batch")), _f(r.get("seq")),
        "on" if r.get("gc") else "off",
        f"{r['total_params'] / 1e6:.1f}M" if r.get("total_params") else "-",
        f"{r['trainable_params'] / 1e6:.2f}M" if r.get("trainable_params") else "-",
        (r.get("adapter_dtype") or "-").replace("torch.", ""),
        _f(r.get("weights_gib")), _f(r.get("peak_alloc_gib")), _f(r.get("peak_reserved_gib")),
        _f(r.get("step_s"), 3), r.get("peak_phase", "-"), _f(r.get("logits_loss_fwd_gib")), r.get("status", "-"),
    ]) + " |"


def table(records) -> str:
    sep = "|" + "|".join(["---"] * (HEADER.count("|") - 1)) + "|"
    return "\n".join([HEADER, sep] + [fmt_row(r) for r in records])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one", help="(internal) run one configuration given as JSON and print RESULT <json>")
    ap.add_argument("--cpu-smoke", action="store_true", help="run a tiny shape on CPU to check the logic")
    ap.add_argument("--out-dir", default=os.environ.get("OUT") or os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--timeout", type=int, default=150, help="seconds per configuration")
    ap.add_argument("--only", default=None, help="comma-separated indices into the config list")
    a = ap.parse_args()

    if a.one:
        rec = run_one(json.loads(a.one))
        print("RESULT " + json.dumps(rec), flush=True)
        return

    configs = SMOKE_CONFIGS if a.cpu_smoke else GPU_CONFIGS
    if a.only:
        configs = [configs[int(i)] for i in a.only.split(",")]
    device = "cpu" if a.cpu_smoke else "cuda"
    cmd = " ".join([os.path.basename(sys.executable)] + [os.path.relpath(sys.argv[0])] + sys.argv[1:])
    t0 = time.time()
    records = run_all(configs, device, a.out_dir, a.timeout)
    card = next((r.get("device_name") for r in records if r.get("device_name")), "unknown")
    meta = dict(date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), card=card, command=cmd,
                total_wall_s=round(time.time() - t0, 1), n_steps=N_STEPS,
                versions={k: next((r.get(k) for r in records if r.get(k)), None)
                          for k in ("torch", "transformers", "peft")},
                notes="weights_gib = memory_allocated after model build (+LoRA adapters), before optimizer; "
                      "peak_* = over 3 steps (fwd+bwd+AdamW.step+zero_grad(set_to_none)); step_s = mean of steps 2-3; "
                      "logits_loss_fwd_gib = forward peak minus memory_allocated at lm_head input (step 3).")
    name = "memory_calibration_smoke" if a.cpu_smoke else "memory_calibration"
    with open(os.path.join(a.out_dir, name + ".json"), "w") as f:
        json.dump(dict(meta=meta, records=records), f, indent=1)
    md = [f"# Measured training-step memory ({'CPU smoke' if a.cpu_smoke else 'GPU'})", "",
          f"- date: {meta['date']}", f"- card: {card}", f"- command: `{cmd}`",
          f"- versions: {meta['versions']}", f"- {meta['notes']}", "", table(records), ""]
    with open(os.path.join(a.out_dir, name + "_measured.md"), "w") as f:
        f.write("\n".join(md))
    print("\n" + "\n".join(md), flush=True)


if __name__ == "__main__":
    main()
