"""Tests against a real control plane started by the suite itself (see conftest.py)."""
