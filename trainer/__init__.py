"""Ouroboros trainer: everything that runs in the trainer image."""
