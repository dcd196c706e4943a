"""The `triskel` command line."""
