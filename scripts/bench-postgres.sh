#!/usr/bin/env bash
# The transfer workload against PostgreSQL on this machine, for comparison
# with the alliance (scripts/bench.sh calls this). Installs Debian's
# PostgreSQL if missing, initdb's a fresh cluster in a temp dir, starts it on
# a free loopback port, runs pgbench with a transfer script (one database
# transaction per transfer, both rows locked with SELECT ... FOR UPDATE in id
# order, synchronous_commit on), stops it and removes the cluster. Prints one
# JSON object on stdout (progress on stderr).
#
# Usage: scripts/bench-postgres.sh [SECONDS] [CLIENTS] [ACCOUNTS]
set -euo pipefail

SECONDS_RUN="${1:-60}"
CLIENTS="${2:-16}"
ACCOUNTS="${3:-10000}"

log() { echo "bench-postgres: $*" >&2; }

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

BIN="$(pg_bin || true)"
if [ -z "$BIN" ]; then
  log "installing PostgreSQL from Debian's packages"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql postgresql-contrib >&2
  BIN="$(pg_bin)"
fi
PGBENCH="$BIN/pgbench"
[ -x "$PGBENCH" ] || PGBENCH="$(command -v pgbench)"
VERSION="$("$BIN/postgres" --version | awk '{print $3}')"

WORK="$(mktemp -d /tmp/alliance-pg.XXXXXX)"
# PostgreSQL refuses to run as root: run it as an unprivileged user.
RUNAS=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$WORK"
  RUNAS=(runuser -u postgres --)
fi
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

cleanup() {
  "${RUNAS[@]}" "$BIN/pg_ctl" -D "$WORK/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

log "initdb in $WORK (PostgreSQL $VERSION), port $PORT"
"${RUNAS[@]}" "$BIN/initdb" -D "$WORK/data" -U bench --auth=trust >/dev/null
cat >>"$WORK/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$WORK'
synchronous_commit = on
fsync = on
max_connections = 100
shared_buffers = 256MB
EOF
"${RUNAS[@]}" "$BIN/pg_ctl" -D "$WORK/data" -l "$WORK/log" -w start >/dev/null

PSQL=("$BIN/psql" -h 127.0.0.1 -p "$PORT" -U bench -d postgres -q -v ON_ERROR_STOP=1)
"${PSQL[@]}" <<EOF
CREATE TABLE balances (id integer PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0));
INSERT INTO balances SELECT g, 1000000 FROM generate_series(1, $ACCOUNTS) g;
CREATE TABLE transfers (id bigserial PRIMARY KEY, src integer NOT NULL, dst integer NOT NULL,
                        amount bigint NOT NULL, at timestamptz NOT NULL DEFAULT now());
VACUUM ANALYZE balances;
EOF

cat >"$WORK/transfer.sql" <<EOF
\set a random(1, $ACCOUNTS)
\set b 1 + (:a + random(0, $ACCOUNTS - 2)) % $ACCOUNTS
BEGIN;
SELECT id, balance FROM balances WHERE id IN (:a, :b) ORDER BY id FOR UPDATE;
UPDATE balances SET balance = balance - 1 WHERE id = :a;
UPDATE balances SET balance = balance + 1 WHERE id = :b;
INSERT INTO transfers (src, dst, amount) VALUES (:a, :b, 1);
COMMIT;
EOF

log "pgbench: $CLIENTS clients, $SECONDS_RUN s"
OUT="$("$PGBENCH" -h 127.0.0.1 -p "$PORT" -U bench -n -M prepared -c "$CLIENTS" -j 2 \
  -T "$SECONDS_RUN" -f "$WORK/transfer.sql" postgres 2>&1)"
echo "$OUT" >&2
TPS="$(echo "$OUT" | awk '/^tps = / {print $3; exit}')"
LAT="$(echo "$OUT" | awk '/^latency average = / {print $4; exit}')"
FAILED="$(echo "$OUT" | awk '/number of failed transactions/ {print $5; exit}')"
COMMITTED="$("${PSQL[@]}" -At -c 'SELECT count(*) FROM transfers')"
TOTAL="$("${PSQL[@]}" -At -c 'SELECT sum(balance) FROM balances')"
[ "$TOTAL" = "$((ACCOUNTS * 1000000))" ] || { log "balances do not add up: $TOTAL"; exit 1; }

cat <<EOF
{"version": "$VERSION", "seconds": $SECONDS_RUN, "clients": $CLIENTS, "accounts": $ACCOUNTS,
 "tps": ${TPS:-0}, "latency_ms": ${LAT:-0}, "failed": ${FAILED:-0}, "committed": $COMMITTED}
EOF
