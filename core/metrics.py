"""Prometheus metrics of the process (prometheus-client's default registry), named in one place."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("http_requests_total", "API requests by route template, method and status",
                        ["route", "method", "status"])
HTTP_LATENCY = Histogram("http_request_duration_seconds", "API request latency by route template and method",
                         ["route", "method"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10))
RUSTORE_CALLS = Counter("rustore_calls_total", "Calls to RuStore's API by endpoint and outcome", ["endpoint", "outcome"])
RUSTORE_LATENCY = Histogram("rustore_call_duration_seconds", "RuStore call latency by endpoint", ["endpoint"])
HOLDS_UNCONFIRMED = Gauge("purchase_holds_unconfirmed_over_3h",
                          "Two-step purchases held (PAID) for over 3 hours and still not confirmed at RuStore")
RUSTORE_BREAKER_OPEN = Gauge("rustore_circuit_open", "1 while the RuStore circuit breaker is open")
RUSTORE_BREAKER_STATE = Gauge("rustore_circuit_state", "RuStore circuit breaker: 0 closed, 1 open, 2 half open")
RUSTORE_BREAKER_OPENS = Counter("rustore_circuit_opens", "Times the RuStore circuit breaker opened")
RUSTORE_FAILURE_RATE = Gauge("rustore_endpoint_failure_rate",
                             "Share of distinct requests to an endpoint that failed within the breaker window", ["endpoint"])
RUSTORE_OUTAGE_TO_SETTLED = Histogram(
    "rustore_outage_to_settled_seconds", "From RuStore answering again after an outage to an item recorded during it settling",
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 300, 600))
WEBHOOKS = Counter("webhooks_total",
                   "RuStore notifications by outcome (received, duplicate, rejected, store_failed, processed, failed)",
                   ["outcome"])
WEBHOOK_LAG = Histogram("webhook_processing_lag_seconds", "Time from receiving a notification to applying it",
                        buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600))
POINTS = Counter("points_total", "Points moved through the ledger by entry type", ["type"])
GENERATIONS = Counter("generation_requests_total", "AI generation requests by provider and outcome",
                      ["provider", "outcome"])
MAILS = Counter("mail_deliveries_total", "Account e-mail delivery attempts by kind and outcome (sent, retry, dead)",
                ["kind", "outcome"])
JOB_RUNS = Counter("job_runs_total", "Scheduled job runs by job and outcome", ["job", "outcome"])
CLAWBACK_SHORTFALL = Counter("clawback_shortfall_total",
                             "Refund clawbacks that found the points already spent (floor at zero), by kind", ["kind"])
CLAWBACK_SHORTFALL_POINTS = Counter("clawback_shortfall_points_total",
                                    "Points a refund could not take back because they were spent, by kind", ["kind"])
UNOWNED_PURCHASES_STOPPED = Counter("unowned_purchases_stopped_total",
                                    "Unowned purchases whose RuStore checks stopped after UNOWNED_PURCHASE_MAX_CHECKS")
REPAIR_SKIPPED = Gauge("repair_skipped_users", "Users a repair job could not repair (and skipped) in its last run",
                       ["job"])
LEDGER_DRIFT = Gauge("ledger_audit_drift_users", "Users whose balance disagreed with their entries at the last audit")
RATE_LIMIT_FAIL_OPEN = Counter("rate_limit_fail_open_total", "Requests let through because Redis was unreachable")
REDIS_ERRORS = Counter("redis_errors_total", "Redis errors by component", ["component"])
EVENTS_CREATED = Counter("events_created_total", "Outbound events to the app's backend created, by type", ["type"])
EVENTS_DELIVERED = Counter("events_delivered_total", "Outbound event deliveries a receiver answered 2xx")
EVENTS_FAILED_ATTEMPTS = Counter("events_failed_attempts_total", "Outbound event delivery attempts that failed "
                                 "(non-2xx, timeout, connection error)")
EVENTS_DEAD = Counter("events_dead_total", "Outbound event deliveries dead-lettered after the retry schedule")
EVENTS_OLDEST_UNDELIVERED = Gauge("events_oldest_undelivered_age_seconds",
                                  "Age of the oldest event not yet delivered to some endpoint (0 when none)")
MONGO_UNAVAILABLE = Counter("mongo_unavailable_total",
                            "Work refused or skipped because MongoDB was unreachable or too slow, by component",
                            ["component"])
# What the alerts and the dashboard need beyond the counters above (deploy/prometheus, deploy/grafana).
JOB_LAST_SUCCESS = Gauge("job_last_success_timestamp_seconds", "Unix time of each job's last successful run", ["job"])
BACKUP_LAST_SUCCESS = Gauge("backup_last_success_timestamp_seconds",
                            "Unix time of the newest backup in BACKUP_DIR (set when the backup job runs)")
DEPENDENCY_UP = Gauge("dependency_up", "1 when the dependency answered the last readiness check (GET /api/ready)",
                      ["dependency"])
WEBHOOK_BACKLOG = Gauge("webhook_events_backlog", "RuStore notifications waiting for another processing attempt")
WEBHOOK_DEAD = Gauge("webhook_events_dead", "RuStore notifications dead-lettered and not yet replayed")
EVENT_LOOP_LAG = Histogram("event_loop_lag_seconds", "How late a task woke on the event loop (what every request waits)",
                           buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
PURCHASES_CREDITED = Counter("purchases_credited_total", "One-time purchases granted to an account, by product",
                             ["product", "sandbox"])
PURCHASE_REVENUE = Counter("purchase_revenue_minor_units_total",
                           "Amount RuStore reported for granted one-time purchases, in minor units of the currency",
                           ["product", "currency", "sandbox"])
SUBSCRIPTION_STATUS_CHANGES = Counter("subscription_status_changes_total",
                                      "Subscriptions entering a RuStore status (as we observed it), by status", ["status"])
