"""Pure functions from a TrainingRun to the manifests of the objects it owns.

`names` computes deterministic names and labels; `manifests` builds the
ConfigMap and the phase Jobs. Nothing here talks to the API server.
"""
