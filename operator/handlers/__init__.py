"""kopf handlers, one module per kind; each `register(registry, runtime)` adds its own."""
