"""Scheduling plugins, one folder each with its README."""
