"""Training a draft: the loop, its objective, batches, schedules, checkpoints and data parallelism."""
