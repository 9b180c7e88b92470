#!/bin/sh
# One image, every service: the first argument (or CLUSTERHUB_SERVICE) names the service to run;
# anything else is a `clusterhub` command (e.g. `db upgrade --app-role clusterhub_app`).
set -eu

service="${1:-${CLUSTERHUB_SERVICE:-}}"
case "$service" in
  registry|events|matchmaking)
    [ "$#" -gt 0 ] && shift
    # One worker per container: scale by replicas, each scraped on its own /metrics.
    # --root-path: the prefix the reverse proxy strips (/registry, ...), so /docs finds its schema.
    # --no-access-log: the service writes its own access line, with the request's ids.
    exec uvicorn --factory "services.${service}.app:create_app" \
      --host 0.0.0.0 --port "${PORT:-8000}" \
      --root-path "${CLUSTERHUB_ROOT_PATH:-}" \
      --proxy-headers --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}" \
      --timeout-graceful-shutdown "${GRACEFUL_SHUTDOWN_SECONDS:-20}" \
      --no-access-log "$@"
    ;;
  "")
    echo "usage: registry | events | matchmaking | <clusterhub command>" >&2
    exit 2
    ;;
  *)
    exec clusterhub "$@"
    ;;
esac
