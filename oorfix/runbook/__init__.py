"""The runbook language: models and JSON Schema, safe YAML, loading with path:line errors,
templating (sandboxed, quoted), built-in actions, maintenance windows, durations, serial."""
