#!/bin/sh
# docker compose's init hook for the postgres image: the same bootstrap SQL as the local cluster.
set -eu
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
    -v owner_password="$OWNER_PASSWORD" -v runtime_password="$RUNTIME_PASSWORD" \
    -f /bootstrap/bootstrap.sql
