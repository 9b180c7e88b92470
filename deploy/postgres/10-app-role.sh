#!/bin/sh
# Runs once, when the PostgreSQL volume is first initialised (docker-entrypoint-initdb.d):
# the role the services connect as. `clusterhub db upgrade --app-role clusterhub_app` (the
# migrate service, as the owner) then grants it what it may do: read and write the read models,
# only insert into the event log.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v app_password="$CLUSTERHUB_APP_PASSWORD" <<'SQL'
CREATE ROLE clusterhub_app LOGIN PASSWORD :'app_password';
GRANT CONNECT ON DATABASE clusterhub TO clusterhub_app;
SQL
