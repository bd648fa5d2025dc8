#!/usr/bin/env bash
# Install the binpick appliance as a systemd service.
#   sudo systemd/install.sh [CONFIG.toml]
# Creates the binpick user, a venv in /opt/binpick/venv with this checkout installed (and what the
# configuration's camera and backend need: edge/install_plan.py), the configuration
# /etc/binpick/binpick.toml (the given file, the old one kept as .bakN; without one, the installed
# file is kept, or at first install the embedded default), the unit,
# and, only when the configuration's plc.tcp_port is below 1024 (e.g. 502), a drop-in granting
# CAP_NET_BIND_SERVICE. Then enables the service and (re)starts it: an upgrade takes effect at once.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "run as root (sudo $0)" >&2; exit 1; }
config=${1:-firmware_config/embedded.toml}
[[ -f $config ]] || { echo "$config: no such configuration" >&2; exit 1; }

id binpick >/dev/null 2>&1 || useradd --system --home-dir /var/lib/binpick --shell /usr/sbin/nologin \
    --groups video,dialout binpick
install -d -m 0755 /opt/binpick /etc/binpick /usr/share/binpick /usr/share/doc/binpick
install -d -o binpick -g binpick -m 0750 /var/lib/binpick /var/lib/binpick/models /var/lib/binpick/snapshots \
    /var/lib/binpick/calibration  # the production example's calibration and bin model
python3 -m venv /opt/binpick/venv
/opt/binpick/venv/bin/pip install --quiet .
plan=(/opt/binpick/venv/bin/python -m edge.install_plan)
# What this configuration needs beyond the appliance (.[sim] for the simulated bin, harvesters for
# GenICam, .[x86] for OpenVINO, cuda-python for TensorRT...), and TensorRT from the Jetson's system packages.
mapfile -t needs < <("${plan[@]}" "$config" --requirements)
extras=()
for need in "${needs[@]}"; do
    if [[ $need == system-site-packages ]]; then python3 -m venv --system-site-packages /opt/binpick/venv
    elif [[ -n $need ]]; then extras+=("$need"); fi
done
(( ${#extras[@]} == 0 )) || /opt/binpick/venv/bin/pip install --quiet "${extras[@]}"
install -m 0644 firmware_config/registers.toml /usr/share/binpick/registers.toml
install -m 0644 firmware_config/registers.toml /etc/binpick/registers.toml  # for configs naming it relatively
install -m 0644 docs/appliance.md docs/registers.md /usr/share/doc/binpick/
if compgen -G "models/*.onnx" >/dev/null; then install -o binpick -g binpick -m 0644 models/*.onnx /var/lib/binpick/models/; fi
install -d -m 0755 /usr/share/binpick/examples
cp -r examples/. /usr/share/binpick/examples/  # the folder camera's example pile
# The configuration: the given file replaces the installed one (kept as binpick.toml.bakN); without
# one, an installed file is kept and a first install takes the embedded default. Its paths into the
# checkout are moved to where the parts above went, and the result is checked before it is put in
# place: what the start would refuse is refused here (a unit that fails at start restarts in a
# loop). A required calibration is not written yet at first install: the appliance reports
# calibration_missing until the wizard writes it.
target=/etc/binpick/binpick.toml
if [[ -n ${1:-} || ! -f $target ]]; then
    staged=/etc/binpick/.binpick.toml.new
    trap 'rm -f "$staged"' EXIT
    "${plan[@]}" "$config" --out "$staged" --place models=/var/lib/binpick/models \
        --place out/snapshots=/var/lib/binpick/snapshots --place examples=/usr/share/binpick/examples \
        --place firmware_config/registers.toml=/etc/binpick/registers.toml
    chgrp binpick "$staged" && chmod 0640 "$staged"
    /opt/binpick/venv/bin/binpick run --config "$staged" --check-config --before-calibration >/dev/null
    if [[ -f $target ]] && ! cmp -s "$staged" "$target"; then
        n=1; while [[ -e $target.bak$n ]]; do n=$((n + 1)); done
        cp -p "$target" "$target.bak$n" && echo "kept the installed configuration as $target.bak$n"
    fi
    mv "$staged" "$target"
    echo "installed $config as $target: check its paths (models, registers, calibration)"
else
    /opt/binpick/venv/bin/binpick run --config "$target" --check-config --before-calibration >/dev/null
fi

install -m 0644 systemd/binpick.service /etc/systemd/system/binpick.service
port=$(/opt/binpick/venv/bin/python -c "import sys; from edge.config import load_config; c = load_config(sys.argv[1], check_files=False); print(c.plc.tcp_port if c.plc.tcp_enabled else 0)" /etc/binpick/binpick.toml)
dropin=/etc/systemd/system/binpick.service.d
if (( port > 0 && port < 1024 )); then
    install -d "$dropin"
    printf '[Service]\n# plc.tcp_port = %s is privileged: allow binding it, nothing else.\nAmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n' "$port" >"$dropin/port-502.conf"
else
    rm -f "$dropin/port-502.conf"
fi
systemd-analyze verify /etc/systemd/system/binpick.service
systemctl daemon-reload
systemctl enable binpick.service
# restart, not `enable --now`: `start` on an active unit does nothing, so an upgrade left the
# running appliance on the old code, unit and configuration until the next reboot or crash.
systemctl restart binpick.service
systemctl --no-pager status binpick.service || true
