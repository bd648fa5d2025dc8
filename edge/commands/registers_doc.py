"""`binpick registers-doc`: write docs/registers.md from firmware_config/registers.toml."""

from __future__ import annotations

import argparse
from pathlib import Path

from binpick_core.errors import CommandError
from edge.atomic_file import output_problem, write_atomically
from edge.plc.register_map import DEFAULT_MAP_PATH, RegisterMap, RegisterMapError

DEFAULT_DOC = Path(__file__).resolve().parents[2] / "docs" / "registers.md"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--map", default=str(DEFAULT_MAP_PATH), help="register map (TOML)")
    parser.add_argument("--out", default=str(DEFAULT_DOC), help="Markdown file to write ('-' = stdout)")
    parser.add_argument("--check", action="store_true", help="exit 1 if --out is not up to date (for CI)")


# Section titles of the enumerations' tables (an enumeration not listed gets a plain title).
ENUM_TITLES = {"mode": "Modes", "pick_outcome": "Pick outcomes", "error": "Error codes"}


def _float_lines(m: RegisterMap) -> list[str]:
    first = "first" if m.word_order == "ABCD" else "second"
    mbpoll_flag = " -B" if m.word_order == "ABCD" else ""
    return [
        f'- float32 takes two registers, **{m.word_order_text}** (`float_word_order = "{m.word_order}"`): '
        f"the {first} register holds the sign, exponent and "
        f"high mantissa bits (IEEE 754 big-endian). With mbpoll: `-t 4:float{mbpoll_flag}`.",
    ]


def _enum_sections(m: RegisterMap) -> list[str]:
    lines: list[str] = []
    for name in sorted(m.enum_values, key=lambda n: (n == "error", n)):  # error codes last, as before
        users = [f"`{r.name}`" for r in m.registers if r.enum == name]
        where = (
            f"register {users[0]}"
            if len(users) == 1
            else f"registers {', '.join(users[:-1])} and {users[-1]}"
        )
        column = "Code" if name == "error" else "Value"
        title = ENUM_TITLES.get(name, f"Values of `{name}`")
        lines += [
            "",
            f"## {title} ({where})" if users else f"## {title}",
            "",
            f"| {column} | Name | Meaning |",
        ]
        lines.append("|---:|---|---|")
        lines += [f"| {v.value} | `{v.name}` | {v.description} |" for v in m.enum_values[name]]
    return lines


def render(register_map: RegisterMap, source_name: str) -> str:
    """The register documentation; generated, so it cannot drift from the map."""
    m = register_map
    mode, outcome = m.mode, m.pick_outcome
    high_first = " -B" if m.word_order == "ABCD" else ""  # mbpoll's flag for high word first
    lines = [
        "# PLC registers",
        "",
        f"Generated from `{source_name}` by `binpick registers-doc`; do not edit by hand. The appliance "
        "reads the same file: addresses, the float word order, the status bits and the value tables below "
        "are data there, not constants in the code.",
        "",
        f"Protocol version **{m.protocol_version}**. Modbus TCP (port 5020 by default, 502 in production) "
        "and Modbus RTU serve the same holding registers (function codes 3, 6, 16; 4 reads the same words).",
        "",
        "- **Address** is the 0-based protocol address; **4xxxx** is the 1-based PLC notation "
        "(`mbpoll -r` counts from 1 too; `mbpoll -0 -r` uses the 0-based address).",
        *_float_lines(m),
        "- Access **r**: written by the appliance, a PLC write is rejected "
        "(Modbus exception 2 and error code "
        f"{m.error_code('invalid_plc_write')}). Access **w**: written by the PLC.",
        "",
        "| Address | 4xxxx | Name | Type | Access | Unit | Description |",
        "|---:|---:|---|---|---|---|---|",
    ]
    for r in m.registers:
        span = f"{r.address}–{r.address + r.size - 1}" if r.size > 1 else str(r.address)
        block = " *(result block)*" if r.block == "result" else ""
        lines.append(
            f"| {span} | {40001 + r.address} | `{r.name}` | {r.type} | {r.access} | {r.unit} "
            f"| {r.description}{block} |"
        )
    lines += [
        "",
        "## Status bits (register `status`)",
        "",
        "| Bit | Mask | Name | Meaning |",
        "|---:|---:|---|---|",
    ]
    for b in sorted(m.bits.values(), key=lambda b: b.bit):
        lines.append(f"| {b.bit} | 0x{1 << b.bit:04X} | `{b.name}` | {b.description} |")
    lines += _enum_sections(m)
    lines += [
        "",
        "## Handshake",
        "",
        'Triggered mode (`appliance.mode = "triggered"`):',
        "",
        f"1. The PLC writes `mode` = {int(mode.run)} (run) once, then, per pick, a new non-zero `trigger_id` "
        "(e.g. a counter).",
        "2. The appliance copies it into `trigger_ack`, sets `busy` and clears `result_valid`: the previous "
        "result is stale from now on.",
        "3. The appliance captures a new image, infers and ranks, then writes the result block "
        "(`request_id` = the trigger, `result_error`, grasp words), then `sequence_id` + 1, "
        "then clears `busy` "
        "and sets `result_valid` (only when a grasp was found) — all under one lock, so a read never sees a "
        "torn block.",
        "4. The PLC waits for `trigger_ack` = its trigger, `busy` = 0 and a new `sequence_id`; if "
        "`result_valid` it uses the grasp, else `result_error` tells why.",
        "5. The PLC writes `result_ack` = `sequence_id`; `result_valid` falls, so the same result is never "
        "taken twice.",
        "6. Optional, after the robot's attempt: the PLC writes `pick_outcome` "
        f"({int(outcome.picked)} picked, {int(outcome.failed)} failed) and "
        "`pick_outcome_id` = the `sequence_id` it tried, in one write; after a failure the appliance "
        "offers other instances for `[pick_feedback] forget_after_cycles` cycles.",
        "",
        "Stop (SIGTERM: `systemctl stop`, `systemctl reload`): `ready` falls at once; the cycle in "
        "flight (up to 5 s) writes its result as any other and `busy` falls with it (a cycle stuck beyond "
        "that is given up: `busy` falls without a result). A trigger no cycle takes, queued or written "
        "after, is answered like one in idle mode: `trigger_ack`, then `result_error` = "
        f"{m.error_code('not_running')} (not_running) and a new `sequence_id`; `error_code` says "
        "not_running. The servers answer for 1 s more, then close until the next start (`sequence_id` "
        "starts again from 0).",
        "",
        "Free-run mode: the appliance cycles continuously; each finished cycle writes a new block and "
        "`sequence_id`; `result_valid` falls on failure, on `result_ack`, and after `plc.result_ttl_s`.",
        "`heartbeat` increments every `plc.heartbeat_period_s` (≤ 1 s) in both modes.",
        "",
        "Example reads with Debian's `mbpoll` (device id 1, TCP port 5020):",
        "",
        "```",
        "mbpoll -m tcp -p 5020 -a 1 -0 -r 0 -c 12 -1 127.0.0.1                      # header words",
        f"mbpoll -m tcp -p 5020 -a 1 -0 -r {m['x'].address} -c 5 -t 4:float{high_first} -1 127.0.0.1"
        "   # x y z angle score",
        f"mbpoll -m tcp -p 5020 -a 1 -0 -r {m['trigger_id'].address} -1 127.0.0.1 42"
        "          # write trigger 42",
        f"mbpoll -m tcp -p 5020 -a 1 -0 -r {m['pick_outcome'].address} -1 127.0.0.1 {int(outcome.failed)} 7"
        "        # pick of sequence 7 failed",
        "```",
        "",
    ]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    try:
        register_map = RegisterMap.load(args.map)
    except RegisterMapError as exc:
        raise CommandError(str(exc)) from exc
    text = render(register_map, "firmware_config/registers.toml")
    if args.out == "-":
        print(text, end="")
        return 0
    out = Path(args.out)
    problem = output_problem(out)
    if problem:
        raise CommandError(f"--out {out}: {problem}")
    if args.check:
        try:  # compared as bytes: a file that is not UTF-8 is simply not the generated one
            current = out.read_bytes() if out.is_file() else b""
        except OSError as exc:
            raise CommandError(f"--out {out}: cannot read it ({exc.strerror})") from None
        if current != text.encode("utf-8"):
            print(f"{out} is out of date: run `binpick registers-doc`")
            return 1
        return 0
    try:  # no half-written doc and no temporary left behind on a failure
        write_atomically(out, text.encode("utf-8"))
    except OSError as exc:
        raise CommandError(f"--out {out}: cannot write it ({exc.strerror or exc})") from None
    print(f"wrote {out}")
    return 0
