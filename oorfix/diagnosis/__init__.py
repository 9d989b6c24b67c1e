"""Diagnosis: findings grouped into incidents by root cause, and fixes that converge."""
