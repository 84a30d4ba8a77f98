#!/bin/sh
# Create the cluster and the database on the first start, then run PostgreSQL.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    printf '%s\n' "$POSTGRES_PASSWORD" >/tmp/pwfile
    initdb --username="$POSTGRES_USER" --pwfile=/tmp/pwfile --auth=scram-sha-256 \
        --encoding=UTF8 >/dev/null
    rm -f /tmp/pwfile
    pg_ctl --wait --options="-c listen_addresses='' -c unix_socket_directories=/tmp" start \
        >/dev/null
    PGPASSWORD=$POSTGRES_PASSWORD psql --host=/tmp --username="$POSTGRES_USER" \
        --dbname=postgres --quiet --command="CREATE DATABASE \"$POSTGRES_DB\""
    pg_ctl --wait stop >/dev/null
fi
exec postgres -c listen_addresses="$PGHOST" -c port="$PGPORT" -c unix_socket_directories=/tmp
