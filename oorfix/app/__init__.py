"""What every entry point shares: a run's settings, loading and planning, the one assembly
of an engine (``wiring``) and the one way a run or a diagnosis is carried out and kept
(``execute``). The CLI, the service (``oorfix serve``) and the test harness all go through
here; nothing in this package prints or prompts.
"""
