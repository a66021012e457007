"""Watching the trainer: resource use (psutil), live progress records, preflight checks, support bundles, reports."""
