"""Ouroboros operator: everything that runs in the operator image."""
