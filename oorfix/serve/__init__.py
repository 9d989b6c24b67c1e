"""`oorfix serve`: the long-running service. Schedules start jobs on cron times, Alertmanager
webhooks start them for firing alerts, and every job runs through ``oorfix.app.execute``, the
same engine, safety gates, locks, budgets, audit log and run history as the CLI. Its parts:

    config.py     serve.yml, validated with path:line errors; secrets from env or files
    jobs.py       a queued job and the run it becomes (settings, mode, trigger)
    state.py      what survives a restart: the queue, schedule marks, alerts and deliveries
    scheduler.py  cron times in time zones: what is due, what was missed while down
    alerts.py     Alertmanager's webhook payload (version 4), routes, hosts, cooldowns
    notify.py     escalations, mitigations and fixes to webhooks, Slack and PagerDuty
    metrics.py    Prometheus metrics
    service.py    the service: jobs in threads, graceful stop, resume after a restart
    web.py        the HTTP side (aiohttp): webhook, API, metrics, health, dashboard
    dashboard.py  the read-only dashboard page
    export.py     schedules as systemd timers or crontab lines
"""
