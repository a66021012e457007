"""Battlesnake API v1 server for any player: `ouro serve` (see `serving.server`).

Layers, one way: `protocol` (decode and check requests, pure) and `players`
(spec -> player, budgets, fallback) <- `sessions` (per-game state) <- `app`
(the API as a function) <- `server` (HTTP bytes in and out).
"""
