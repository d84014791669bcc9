#!/usr/bin/env bash
# Writes the compose deployment's secrets (deploy/secrets/README.md) with
# random passwords. A file that exists is kept, so running it again after a
# rotation by hand changes nothing.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/deploy/secrets"
chmod 0700 "$dir"
random() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
write() { # write <file> <content>
	[ -e "$dir/$1" ] && { echo "kept    $1"; return; }
	( umask 0333; printf '%s\n' "$2" >"$dir/$1" )
	echo "written $1"
}
if [ -e "$dir/pg_password.txt" ]; then
	pg=$(head -n1 "$dir/pg_password.txt")
else
	pg=$(random)
fi
write pg_password.txt "$pg"
write pg_passfile "*:*:*:theprotocol:$pg"
write temporal_pg_password.txt "$(random)"
write grafana_admin_password.txt "$(random)"
