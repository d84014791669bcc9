#!/usr/bin/env bash
# Checks deploy/'s Prometheus and Alertmanager configuration with the
# projects' own tools: every alerts*.yml parses (promtool check rules),
# prometheus.yml loads them (promtool check config), every
# tests/*.test.yml passes (promtool test rules), every alert has a test
# case, and alertmanager.yml parses and routes each severity to its
# receiver (amtool).
#
# promtool and amtool come from Debian's prometheus and
# prometheus-alertmanager packages, installed here when missing (as root,
# as in CI). Without them and without root the script exits 77 (skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=deploy/prometheus
am=deploy/alertmanager/alertmanager.yml

need() { # need <command> <debian package>
	command -v "$1" >/dev/null && return 0
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
		echo "check-deploy: $1 is missing and cannot be installed (not root or no apt-get): skipped" >&2
		exit 77
	fi
	echo ">> installing $2 (for $1)" >&2
	export DEBIAN_FRONTEND=noninteractive
	# Other tests may be installing packages at the same time: wait for
	# dpkg's lock rather than fail on it.
	local apt=(apt-get -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)
	"${apt[@]}" install "$2" >/dev/null ||
		{ apt-get -o DPkg::Lock::Timeout=600 -qq update && "${apt[@]}" install "$2" >/dev/null; }
	command -v "$1" >/dev/null || { echo "check-deploy: $2 installed no $1" >&2; exit 1; }
}
need promtool prometheus
need amtool prometheus-alertmanager

shopt -s nullglob
rules=("$dir"/alerts*.yml)
tests=("$dir"/tests/*.test.yml)
[ ${#rules[@]} -gt 0 ] || { echo "check-deploy: no $dir/alerts*.yml" >&2; exit 1; }
[ ${#tests[@]} -gt 0 ] || { echo "check-deploy: no $dir/tests/*.test.yml" >&2; exit 1; }

promtool check rules "${rules[@]}"
promtool check config "$dir/prometheus.yml"
# A rule file prometheus.yml does not load would be checked here and never
# evaluated in production.
loaded=$(promtool check config "$dir/prometheus.yml" 2>&1 | sed -n 's/^Checking \(.*alerts.*\.yml\)$/\1/p' | xargs -n1 basename | sort)
for f in "${rules[@]}"; do
	grep -qx "$(basename "$f")" <<<"$loaded" || { echo "check-deploy: prometheus.yml does not load $f" >&2; exit 1; }
done
# Test files name their rule files relative to themselves.
(cd "$dir/tests" && promtool test rules "${tests[@]#"$dir/tests/"}")

# Every alert needs a case in some test file.
missing=0
for a in $(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\).*/\1/p' "${rules[@]}" | sort -u); do
	if ! grep -qE "alertname: *$a( |,|}|$)" "${tests[@]}"; then
		echo "check-deploy: alert $a has no case in $dir/tests/*.test.yml" >&2
		missing=1
	fi
done
[ $missing -eq 0 ] || exit 1

amtool check-config "$am"
for sev in page:oncall ticket:tickets; do
	got=$(amtool config routes test --config.file="$am" severity="${sev%%:*}" alertname=Any)
	[ "$got" = "${sev#*:}" ] || { echo "check-deploy: severity=${sev%%:*} routes to '$got', want ${sev#*:}" >&2; exit 1; }
done
echo "check-deploy: OK"
