"""Training data: chat JSONL records and their tokenisation with an assistant-only loss mask."""
