"""Target features: where they are stored (safetensors) and how they are produced from the target."""
