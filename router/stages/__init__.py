"""The router's request path as a chain of stages (see `base.Stage`)."""
