"""Scheduling: per stage, a profile of filters → weighted scorers → a picker (llm-d style)."""
