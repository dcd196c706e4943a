"""The OpenAI-compatible HTTP front's pure parts: request parsing and response shapes."""
