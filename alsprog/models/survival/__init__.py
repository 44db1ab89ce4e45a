"""Survival models (issue 25): Cox proportional hazards numerics so far."""
