#!/bin/sh
# docker compose's init hook for the postgres image: the same bootstrap SQL as the local cluster.
# OWNER_PASSWORD and RUNTIME_PASSWORD reach it through the environment (psql's \getenv).
set -eu
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -f /bootstrap/bootstrap.sql
