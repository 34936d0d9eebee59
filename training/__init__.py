"""InfTool training: plain Python (no Django) datasets, SFT, GRPO, rewards and BFCL evaluation."""
