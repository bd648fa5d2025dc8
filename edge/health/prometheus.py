"""The appliance's `/metrics` page: Prometheus exposition format (text 0.0.4).

Written by hand: a few dozen lines need no client library, and the appliance must install
without one. Every value is read from the supervisor's public state at request time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.health.process_stats import read_process_stats

if TYPE_CHECKING:
    from edge.supervisor import Supervisor


def prometheus_text(sup: Supervisor) -> str:
    """Prometheus exposition format (text 0.0.4), written by hand: a dozen lines need no client library."""
    s = sup.stats.summary()
    lines = [
        "# HELP binpick_up 1 while the appliance runs.",
        "# TYPE binpick_up gauge",
        f"binpick_up {1 if s['state'] == 'running' else 0}",
        "# HELP binpick_cycles_total Finished cycles, any outcome.",
        "# TYPE binpick_cycles_total counter",
        f"binpick_cycles_total {s['cycles']}",
        "# HELP binpick_cycle_errors_total Failed cycles by error code name.",
        "# TYPE binpick_cycle_errors_total counter",
    ]
    for name in sup.register_map.errors:
        if name != "ok":
            lines.append(f'binpick_cycle_errors_total{{error="{name}"}} {s["errors"].get(name, 0)}')
    lines += [
        "# HELP binpick_cycle_duration_milliseconds Cycle time percentiles over the last 500 cycles.",
        "# TYPE binpick_cycle_duration_milliseconds summary",
    ]
    for stage, p in sup.stats.percentiles().items():
        for q, quantile in (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99")):
            lines.append(
                f'binpick_cycle_duration_milliseconds{{stage="{stage}",quantile="{quantile}"}} {p[q]}'
            )
    camera = sup.camera.status() if sup.camera else {}
    regs = sup.bank.snapshot()
    lines += [
        "# HELP binpick_camera_reopens_total Times the camera was torn down and reopened.",
        "# TYPE binpick_camera_reopens_total counter",
        f"binpick_camera_reopens_total {camera.get('reopens', 0)}",
        "# HELP binpick_camera_corrupt_frames_total Frames that were not decodable images.",
        "# TYPE binpick_camera_corrupt_frames_total counter",
        f"binpick_camera_corrupt_frames_total {camera.get('corrupt_frames', 0)}",
        "# HELP binpick_plc_rejected_writes_total PLC writes rejected (read-only register or out of range).",
        "# TYPE binpick_plc_rejected_writes_total counter",
        f"binpick_plc_rejected_writes_total {sup.bank.rejected_writes}",
        "# HELP binpick_plc_refused_connections_total Modbus TCP connections refused by plc.allowed_clients "
        "or at the connection caps.",
        "# TYPE binpick_plc_refused_connections_total counter",
        f"binpick_plc_refused_connections_total {sup.plc.gate.refused_connections}",
        "# HELP binpick_plc_refused_requests_total Writes of plc.readonly_clients refused.",
        "# TYPE binpick_plc_refused_requests_total counter",
        f"binpick_plc_refused_requests_total {sup.plc.gate.refused_requests}",
        "# HELP binpick_page_viewers Open live streams of the operator's page.",
        "# TYPE binpick_page_viewers gauge",
        f"binpick_page_viewers {sup.frames.viewers}",
        *_page_connection_lines(sup),
        "# HELP binpick_result_sequence Sequence id of the last published result.",
        "# TYPE binpick_result_sequence gauge",
        f"binpick_result_sequence {regs['sequence_id']}",
        "# HELP binpick_pixel_mode 1 when running without calibration.",
        "# TYPE binpick_pixel_mode gauge",
        f"binpick_pixel_mode {int(sup.calibration.pixel_mode)}",
        "# HELP binpick_calibration_failed_checks Checks the calibration in use failed when written "
        "(binpick calibrate --accept-failed); 0 when it passed them all or none is in use.",
        "# TYPE binpick_calibration_failed_checks gauge",
        f"binpick_calibration_failed_checks {len(sup.calibration.failed_checks)}",
        *_bin_lines(sup),
        "# HELP binpick_error_code Current error code register.",
        "# TYPE binpick_error_code gauge",
        f"binpick_error_code {regs['error_code']}",
        *_process_lines(),
    ]
    return "\n".join(lines) + "\n"


def _page_connection_lines(sup: Supervisor) -> list[str]:
    """The status page's connections (none while it is off)."""
    server = sup.status_server
    if server is None:
        return []
    httpd = server.httpd
    return [
        "# HELP binpick_page_connections Open connections to the status page (each has a thread).",
        "# TYPE binpick_page_connections gauge",
        f"binpick_page_connections {httpd.open_connections}",
        "# HELP binpick_page_refused_connections_total Connections turned away at the status page's cap.",
        "# TYPE binpick_page_refused_connections_total counter",
        f"binpick_page_refused_connections_total {httpd.refused_connections}",
    ]


# The names, types and help texts of Prometheus' own process collector (prometheus_client,
# client_golang), so that the dashboards and leak alerts written for them apply unchanged.
_PROCESS_METRICS = (
    ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", "virtual_memory_bytes"),
    ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", "resident_memory_bytes"),
    (
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        "start_time_seconds",
    ),
    (
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        "cpu_seconds",
    ),
    ("process_open_fds", "gauge", "Number of open file descriptors.", "open_fds"),
    ("process_max_fds", "gauge", "Maximum number of open file descriptors.", "max_fds"),
    ("binpick_process_threads", "gauge", "Threads of the appliance process.", "threads"),
)


def _process_lines() -> list[str]:
    """The process's own resources (edge.health.process_stats); a value the platform lacks is left out."""
    stats = read_process_stats()
    lines = []
    for name, kind, text, field in _PROCESS_METRICS:
        value = getattr(stats, field)
        if value is not None:
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {value}"]
    return lines


def _bin_lines(sup: Supervisor) -> list[str]:
    """The bin model's gauges ([bin] enabled and seen once), else none."""
    view = None if sup.bin is None else sup.bin.last
    if view is None:
        return []
    dx, dy = view.pose.shift_px
    return [
        "# HELP binpick_bin_shift_px The bin's shift from its commissioned place (camera pixels).",
        "# TYPE binpick_bin_shift_px gauge",
        f'binpick_bin_shift_px{{axis="u"}} {dx:.2f}',
        f'binpick_bin_shift_px{{axis="v"}} {dy:.2f}',
        "# HELP binpick_bin_angle_degrees The bin's rotation from its commissioned place.",
        "# TYPE binpick_bin_angle_degrees gauge",
        f"binpick_bin_angle_degrees {view.pose.angle_deg:.3f}",
        "# HELP binpick_bin_fill_percent Share of the bin's interior covered by product.",
        "# TYPE binpick_bin_fill_percent gauge",
        f"binpick_bin_fill_percent {view.fill.percent:.1f}",
        "# HELP binpick_bin_empty 1 while the bin is reported empty (bin_empty status bit).",
        "# TYPE binpick_bin_empty gauge",
        f"binpick_bin_empty {int(view.empty)}",
    ]
