#!/usr/bin/env bash
# One database and one login role per Juwei service, each role owning only its own database.
#
# The postgres image runs this once, on the first start with an empty data volume
# (/docker-entrypoint-initdb.d). It is idempotent: run it again by hand to add a service's database or to
# apply changed passwords from deploy/.env:
#   docker compose -f deploy/compose.yaml exec postgres bash /docker-entrypoint-initdb.d/10-juwei-databases.sh
#
# Environment: JUWEI_<SERVICE>_DB_PASSWORD for each service (required); POSTGRES_USER / POSTGRES_DB (set by
# the image); JUWEI_DATABASES to override the list (default: the four services and the console).
set -euo pipefail

databases=${JUWEI_DATABASES:-residents supplies testing notify console}

for name in $databases; do
  password_var="JUWEI_${name^^}_DB_PASSWORD"
  password=${!password_var:-}
  if [[ -z "$password" ]]; then
    echo "init-databases: $password_var is not set" >&2
    exit 1
  fi
  # psql variables (:"name", :'password') quote identifiers and literals: no SQL is built by string pasting.
  psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    -v name="$name" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'name')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
ALTER ROLE :"name" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'name', :'name', 'UTF8')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
-- Other services' roles (and anyone else) may not even connect: services share nothing but Kafka.
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"name" TO :"name";
SQL
  echo "init-databases: database and role $name ready"
done
