"""Fine-tuning trainer for the self-hosted fine-tuning platform (LoRA and full-parameter)."""
