#!/usr/bin/env bash
# Django's deployment checklist with the documented production environment (README, "Production").
set -euo pipefail
cd "$(dirname "$0")/.."
env -i PATH="$PATH" HOME="${HOME:-/root}" \
    DEBUG=0 \
    SECRET_KEY="check-deploy-$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n')" \
    ALLOWED_HOSTS=chat.example.com \
    CSRF_TRUSTED_ORIGINS=https://chat.example.com \
    REDIS_URL=redis://redis.example.com:6379/0 \
    USE_X_FORWARDED_PROTO=1 \
    SECURE_SSL_REDIRECT=1 \
    SECURE_HSTS_SECONDS=31536000 \
    SECURE_HSTS_INCLUDE_SUBDOMAINS=1 \
    SECURE_HSTS_PRELOAD=1 \
    CHATSITE_ENV_FILE=/nonexistent \
    .venv/bin/python manage.py check --deploy --fail-level WARNING
