"""Target features: where they are stored (safetensors), how they are produced from the target (precomputed
or streamed by producer processes), where a rank's refs come from, and when streamed files are released."""
