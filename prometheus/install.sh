#!/bin/sh
# Install promtool/prometheus and amtool/alertmanager from Debian's packages,
# without letting the packages start their system services.
#
# Idempotent: does nothing when `prometheus`, `promtool`, `prometheus-alertmanager`
# and `amtool` are already on PATH (Debian names the Alertmanager binary
# `prometheus-alertmanager`; upstream tarballs call it `alertmanager`). Must run as root (or under sudo).
#
# Debian 12 ships prometheus 2.42 and prometheus-alertmanager 0.25. Their postinst
# scripts enable and start `prometheus.service` (port 9090) and
# `prometheus-alertmanager.service` (port 9093) through deb-systemd-invoke /
# invoke-rc.d, both of which honour /usr/sbin/policy-rc.d: while a policy-rc.d
# that exits 101 is in place, no service is started. We put one in place for the
# duration of the install (unless one already exists), skip Recommends (the
# node exporter would otherwise start on port 9100), and afterwards stop and
# disable the units if systemd is running, so that the project's own Prometheus
# and Alertmanager can bind 127.0.0.1:9090 and 127.0.0.1:9093.
set -eu

need=0
for tool in prometheus promtool prometheus-alertmanager amtool; do
    command -v "$tool" >/dev/null 2>&1 || need=1
done
if [ "$need" -eq 0 ]; then
    echo "install.sh: prometheus, promtool, prometheus-alertmanager and amtool already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: must run as root to apt-get install prometheus packages" >&2
    exit 1
fi

policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from prometheus/install.sh\nexit 101\n' > "$policy"
    chmod 0755 "$policy"
    own_policy=1
fi
cleanup() {
    if [ "$own_policy" -eq 1 ]; then rm -f "$policy"; fi
}
trap cleanup EXIT INT TERM

export DEBIAN_FRONTEND=noninteractive
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -print -quit 2>/dev/null)" ]; then
    apt-get update
fi
apt-get install -y --no-install-recommends prometheus prometheus-alertmanager

# If systemd runs this machine, make sure the packaged services stay off.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now prometheus.service prometheus-alertmanager.service || true
fi

promtool --version | head -n 1
amtool --version 2>&1 | head -n 1
