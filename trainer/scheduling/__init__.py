"""Schedules on one machine: the TrainingSchedule decision run locally, with a SQLite history."""
