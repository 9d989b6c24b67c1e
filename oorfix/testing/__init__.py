"""Runbook tests: scenarios that script what hosts answer and say what must happen."""
