"""Pieces every component shares: API models, block hashing, the mock tokenizer, profiles."""
