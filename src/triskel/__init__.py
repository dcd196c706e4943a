"""Triskel."""
