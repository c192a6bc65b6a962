#!/usr/bin/env bash
# Make sure the local PostgreSQL and RabbitMQ answer; start them if they do not.
set -euo pipefail

wait_for() {  # name, seconds, command...
  local name=$1 seconds=$2; shift 2
  for _ in $(seq "$seconds"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "ensure-services: $name did not come up within ${seconds}s" >&2
  return 1
}

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "ensure-services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  wait_for PostgreSQL 30 pg_isready -q -h 127.0.0.1 -p 5432
fi
if ! psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='test'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -qc "create database test"
fi

if ! rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1; then
  echo "ensure-services: starting RabbitMQ"
  rabbitmq-server -detached || true
  wait_for RabbitMQ 60 rabbitmq-diagnostics -q check_port_connectivity
fi
echo "ensure-services: PostgreSQL and RabbitMQ are up"
