"""Jupyter-first kit for the whole life of a fine-tuned LLM or multimodal model: pick, prepare data, fine-tune, align, chat, evaluate, export and serve.

Modules:

- `swiftnb.training.trainer`: transformers' `Trainer` as swiftnb runs it: packs cut into chunks, rows dealt by tokens, Liger kept to the GPU, the knobs filled from the plan, the `TrainingArguments` every method shares, and the fingerprints of a run."""

__version__ = "0.0.1"
