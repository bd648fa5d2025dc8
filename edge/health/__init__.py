"""Health: systemd notification, the local status page with metrics, and snapshots."""
