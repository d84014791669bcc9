#!/usr/bin/env bash
# Installs Debian's chromium when it is missing, for the browser test of
# the monitor page (node: TestMonitorPageInABrowser). make test runs it
# before the tests and sets THEPROTOCOL_REQUIRE_BROWSER=1, so a browser
# that could not be installed fails that test rather than skipping it.
# Without root or apt-get this script only warns.
set -euo pipefail
for c in chromium chromium-browser; do
	command -v "$c" >/dev/null && exit 0
done
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
	echo "ensure-chromium: chromium is missing and cannot be installed (not root or no apt-get)" >&2
	exit 0
fi
echo ">> installing chromium (browser test of /ui)" >&2
export DEBIAN_FRONTEND=noninteractive
# Other tests may be installing packages at the same time: wait for dpkg's
# lock rather than fail on it.
apt=(apt-get -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)
"${apt[@]}" install chromium >/dev/null ||
	{ apt-get -o DPkg::Lock::Timeout=600 -qq update && "${apt[@]}" install chromium >/dev/null; }
command -v chromium >/dev/null || { echo "ensure-chromium: the chromium package installed no chromium" >&2; exit 1; }
