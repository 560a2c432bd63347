# Production image: slim Python, runtime dependencies only (requirements.txt), non-root, health-checked.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APP_ENV=production \
    PORT=8000

WORKDIR /app
# Dependencies first, so code changes do not reinstall them.
COPY requirements.txt .
RUN pip install -r requirements.txt

RUN useradd --create-home --uid 10001 app \
    && mkdir -p /app/backups && chown app:app /app/backups
# What is copied is decided by .dockerignore (no tests, bench, dev requirements, secrets or local state).
COPY --chown=app:app . .
USER app

EXPOSE 8000
# core/healthcheck.py probes over HTTPS when the server terminates TLS itself (TLS_CERT_FILE/TLS_KEY_FILE).
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-m", "core.healthcheck", "/api/health"]

CMD ["python", "server.py"]
