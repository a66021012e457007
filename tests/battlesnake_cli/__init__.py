"""The official Battlesnake CLI (`battlesnake play`), built for the server tests."""

from .build import CliUnavailable, ensure_cli

__all__ = ["CliUnavailable", "ensure_cli"]
