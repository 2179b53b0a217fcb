#!/bin/sh
# Create the env files compose.yaml reads, each secret a fresh random value, readable by the owner only.
# Existing files are kept. ENAIO_PASSWORD in secrets/hub.env is the password of the hub's technical
# user in enaio: replace the random one with it; FormCycle's HTTP-Request action sends FORMCYCLE_TOKEN.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
random() { openssl rand -hex 32; }
[ -e secrets/postgres.env ] || printf 'POSTGRES_PASSWORD=%s\n' "$(random)" >secrets/postgres.env
[ -e secrets/s3.env ] || printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' \
	"$(openssl rand -hex 10)" "$(random)" >secrets/s3.env
[ -e secrets/hub.env ] || printf '%s=%s\n' \
	AKTENHUB_ADMIN_TOKEN "$(random)" \
	AKTENHUB_SESSION_SECRET "$(random)" \
	FORMCYCLE_TOKEN "$(random)" \
	ENAIO_PASSWORD "$(random)" >secrets/hub.env
echo "secrets written to $(pwd)/secrets (set ENAIO_PASSWORD in hub.env to the enaio user's password)"
