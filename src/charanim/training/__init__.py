"""``charanim train``: recipes, data, the flow-matching objective, checkpoints, LoRA."""
