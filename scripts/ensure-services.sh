#!/usr/bin/env bash
# Makes sure PostgreSQL, Redis and NATS (JetStream) answer on their standard local ports.
# Idempotent: a running server is left alone. On a Debian machine without them, installs them
# from Debian's packages first (needs root). Used by `make up`, `make test` and .ci/run.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif have sudo; then sudo "$@"; else "$@"; fi; }

missing=()
[ -x /usr/sbin/nats-server ] || have nats-server || missing+=(nats-server)
have redis-server || missing+=(redis-server)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from Debian packages"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

if ! port_open 5432; then
  echo "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
fi
if ! port_open 6379; then
  echo "starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
if ! port_open 4222; then
  echo "starting NATS with JetStream"
  as_root mkdir -p /var/lib/nats-server
  as_root start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server || echo /usr/sbin/nats-server)" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
fi

for i in $(seq 1 50); do
  if port_open 5432 && port_open 6379 && port_open 4222; then break; fi
  sleep 0.2
done

# Tests connect as the OS user to database "test" over TCP with trust auth (the CI machines'
# setup). Create the role and database when this machine lacks them.
if have psql && ! psql "postgres://$(id -un)@127.0.0.1:5432/test" -Atqc 'select 1' >/dev/null 2>&1; then
  echo "creating database role $(id -un) and database test"
  as_root su postgres -c "psql -q -c \"create role \\\"$(id -un)\\\" superuser login\"" 2>/dev/null || true
  as_root su postgres -c "createdb -O \"$(id -un)\" test" 2>/dev/null || true
fi

port_open 5432 && port_open 6379 && port_open 4222 || { echo "a service did not come up" >&2; exit 1; }
echo "PostgreSQL, Redis and NATS are up"
