#!/bin/sh
# The system tools the export tests check output with (issue 11): nft, ipset, iptables-restore,
# bird, haproxy, nginx, squid. Installed with apt-get when running as root on Debian/Ubuntu and
# any is missing; otherwise says what is missing (those tests then skip, naming the package).
set -u
missing=""
for pair in nft:nftables ipset:ipset iptables-restore:iptables bird:bird2 haproxy:haproxy \
            nginx:nginx-light squid:squid; do
    tool=${pair%%:*}; package=${pair#*:}
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing="$missing $package"
done
# the web page's browser tests (issue 12): Debian's headless Chromium and its WebDriver
for pair in chromium:chromium chromedriver:chromium-driver; do
    tool=${pair%%:*}; package=${pair#*:}
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $package"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing >/dev/null \
        || echo "apt-get could not install:$missing; their tests will skip" >&2
    # the packaged services must not keep running (or hold ports) on a CI machine
    for service in nginx haproxy squid bird; do
        (command -v systemctl >/dev/null 2>&1 && systemctl stop "$service") >/dev/null 2>&1 || true
        (command -v service >/dev/null 2>&1 && service "$service" stop) >/dev/null 2>&1 || true
    done
else
    echo "not installed:$missing (as root: sh tests/install-tools.sh); their tests will skip" >&2
fi
exit 0
