"""linux.resources.devices -> a BPF_PROG_TYPE_CGROUP_DEVICE program (cgroup v2).

cgroup v2 has no devices.allow: the kernel asks an eBPF program attached
to the cgroup, once per device access, with struct bpf_cgroup_dev_ctx
{ u32 access_type (type | access << 16); u32 major; u32 minor; } in r1.
The program returns 1 to allow, 0 to deny.  Rules are tried from the
last to the first (a later rule overrides an earlier one, as in v1), and
no match denies.  husk-init loads and attaches it (bpf(2)).
"""

from __future__ import annotations

import struct
from typing import Any

from runtime.core.errors import ConfigError

# struct bpf_insn { u8 code; u8 dst:4, src:4; s16 off; s32 imm; }
_INSN = struct.Struct("<BBhi")
LDX_W = 0x61   # BPF_LDX | BPF_MEM | BPF_W
AND32_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
RSH32_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
MOV32_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
MOV64_K = 0xB7  # BPF_ALU64 | BPF_MOV | BPF_K
JNE_K = 0x55    # BPF_JMP | BPF_JNE | BPF_K
EXIT = 0x95     # BPF_JMP | BPF_EXIT

DEV_BLOCK, DEV_CHAR = 1, 2                     # BPF_DEVCG_DEV_*
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4       # BPF_DEVCG_ACC_*
_ACCESS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return _INSN.pack(code, (src << 4) | dst, off, imm)


def _rule_block(rule: dict[str, Any], where: str) -> tuple[list[bytes], bool]:
    """Instructions that exit with the rule's verdict when it matches, and
    whether it matches every access (then nothing after it can run)."""
    checks: list[tuple[int, int, int]] = []  # (code, reg, imm) - each jumps past the block on mismatch
    dtype = rule.get("type") or "a"
    if dtype not in ("a", "b", "c"):
        raise ConfigError(f"{where}.type", f"{dtype!r} is not a, b or c")
    prologue: list[bytes] = []
    if dtype != "a":
        checks.append((JNE_K, 2, DEV_BLOCK if dtype == "b" else DEV_CHAR))
    access = rule.get("access") or "rwm"
    mask = 0
    for ch in access:
        if ch not in _ACCESS:
            raise ConfigError(f"{where}.access", f"{access!r}: only r, w and m")
        mask |= _ACCESS[ch]
    if mask != ACC_MKNOD | ACC_READ | ACC_WRITE:
        # The requested access must lie within the rule's: (r3 & ~mask) == 0.
        prologue += [_insn(MOV32_X, dst=6, src=3), _insn(AND32_K, dst=6, imm=~mask & 0xFFFF)]
        checks.append((JNE_K, 6, 0))
    for reg, key in ((4, "major"), (5, "minor")):
        value = rule.get(key)
        if value is not None and value >= 0:
            checks.append((JNE_K, reg, value))
    verdict = [_insn(MOV64_K, dst=0, imm=1 if rule.get("allow") else 0), _insn(EXIT)]
    # Each check jumps over the remaining checks and the verdict.
    body: list[bytes] = []
    for i, (code, reg, imm) in enumerate(checks):
        remaining = len(checks) - i - 1 + len(verdict)
        body.append(_insn(code, dst=reg, off=remaining, imm=imm))
    return prologue + body + verdict, not checks


def device_program(rules: list[dict[str, Any]]) -> bytes:
    insns = [
        _insn(LDX_W, dst=2, src=1, off=0),      # r2 = access_type
        _insn(AND32_K, dst=2, imm=0xFFFF),      # r2 = device type
        _insn(LDX_W, dst=3, src=1, off=0),
        _insn(RSH32_K, dst=3, imm=16),          # r3 = requested access
        _insn(LDX_W, dst=4, src=1, off=4),      # r4 = major
        _insn(LDX_W, dst=5, src=1, off=8),      # r5 = minor
    ]
    for i in reversed(range(len(rules))):
        block, catch_all = _rule_block(rules[i], f"linux.resources.devices[{i}]")
        insns += block
        if catch_all:  # the verifier refuses unreachable code after it
            return b"".join(insns)
    insns += [_insn(MOV64_K, dst=0, imm=0), _insn(EXIT)]  # nothing matched: deny
    return b"".join(insns)
