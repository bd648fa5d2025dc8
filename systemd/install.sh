#!/usr/bin/env bash
# Install the binpick appliance as a systemd service.
#   sudo systemd/install.sh [CONFIG.toml]
# Creates the binpick user, a venv in /opt/binpick/venv with this checkout installed, the
# configuration /etc/binpick/binpick.toml (the given file, else the embedded default), the unit,
# and, only when the configuration's plc.tcp_port is below 1024 (e.g. 502), a drop-in granting
# CAP_NET_BIND_SERVICE. Then enables and starts the service.
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
extras=""
grep -Eq '^source *= *"simulated"' "$config" && extras="[sim]"  # the simulated bin needs Mikado + MuJoCo
/opt/binpick/venv/bin/pip install --quiet ".$extras"
install -m 0644 firmware_config/registers.toml /usr/share/binpick/registers.toml
install -m 0644 firmware_config/registers.toml /etc/binpick/registers.toml  # for configs naming it relatively
install -m 0644 docs/appliance.md docs/registers.md /usr/share/doc/binpick/
if compgen -G "models/*.onnx" >/dev/null; then install -o binpick -g binpick -m 0644 models/*.onnx /var/lib/binpick/models/; fi
if [[ ! -f /etc/binpick/binpick.toml ]]; then
    # The shipped files name the model and snapshots relative to the checkout; point them at /var/lib.
    sed -e 's#^model = "\.\./models/#model = "/var/lib/binpick/models/#' \
        -e 's#^snapshot_dir = "\.\./out/snapshots"#snapshot_dir = "/var/lib/binpick/snapshots"#' \
        "$config" >/etc/binpick/binpick.toml
    chgrp binpick /etc/binpick/binpick.toml && chmod 0640 /etc/binpick/binpick.toml
    echo "installed $config as /etc/binpick/binpick.toml: check its paths (models, registers, calibration)"
fi
# What the start would refuse, refused here (a unit that fails at start restarts in a loop); a required
# calibration is not written yet at first install: the appliance reports calibration_missing until
# the wizard writes it.
/opt/binpick/venv/bin/binpick run --config /etc/binpick/binpick.toml --check-config --before-calibration >/dev/null

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
systemctl enable --now binpick.service
systemctl --no-pager status binpick.service || true
