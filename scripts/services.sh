#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on localhost, starting them when they are installed here
# but not running. Prints one line per service; exits non-zero with what to do when it cannot.
set -u

wait_until() {  # wait_until SECONDS COMMAND...: poll the command until it succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}

if pg_isready -h localhost -q 2>/dev/null; then
  echo "postgresql: up"
elif command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  wait_until 30 pg_isready -h localhost -q || { echo "postgresql: did not start"; exit 1; }
  echo "postgresql: started"
else
  echo "postgresql: not running on localhost:5432 and not installed here; install PostgreSQL 15+ or set DATABASE_URL"
  exit 1
fi

if redis-cli -h localhost ping >/dev/null 2>&1; then
  echo "redis: up"
elif command -v redis-server >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir "$( [ -w /var/lib/redis ] && echo /var/lib/redis || echo /tmp )" \
    --logfile "$( [ -w /var/log/redis ] && echo /var/log/redis/ci.log || echo /tmp/redis.log )"
  wait_until 30 redis-cli -h localhost ping || { echo "redis: did not start"; exit 1; }
  echo "redis: started"
else
  echo "redis: not running on localhost:6379 and not installed here; install Redis 7 (e.g. apt-get install redis-server) or set REDIS_URL"
  exit 1
fi
