"""The cgroup v2 device program, checked by an interpreter of the few BPF
instructions it uses (the kernel runs it for real in the v2 VM tests)."""

import struct

import pytest

from runtime.core.cgroups import devices_bpf as d
from runtime.core.errors import ConfigError


def run(program: bytes, dtype: int, access: int, major: int, minor: int) -> int:
    regs = [0] * 11
    ctx = (dtype | access << 16, major, minor)
    insns = [struct.unpack_from("<BBhi", program, i) for i in range(0, len(program), 8)]
    pc = 0
    while True:
        code, regbyte, off, imm = insns[pc]
        dst, src = regbyte & 0xF, regbyte >> 4
        pc += 1
        if code == d.LDX_W:
            regs[dst] = ctx[off // 4]
        elif code == d.AND32_K:
            regs[dst] &= imm & 0xFFFFFFFF
        elif code == d.RSH32_K:
            regs[dst] >>= imm
        elif code == d.MOV32_X:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == d.MOV64_K:
            regs[dst] = imm
        elif code == d.JNE_K:
            if regs[dst] != imm:
                pc += off
        elif code == d.EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


R, W, M = d.ACC_READ, d.ACC_WRITE, d.ACC_MKNOD
C, B = d.DEV_CHAR, d.DEV_BLOCK


def test_deny_all_then_allow_listed():
    prog = d.device_program([{"allow": False, "access": "rwm"},
                             {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                             {"allow": True, "type": "c", "major": 136, "minor": -1, "access": "rw"}])
    assert run(prog, C, R | W, 1, 3) == 1
    assert run(prog, C, R, 1, 5) == 0
    assert run(prog, B, R, 1, 3) == 0
    assert run(prog, C, R | W, 136, 7) == 1
    assert run(prog, C, M, 136, 7) == 0  # mknod not in "rw"


def test_later_rule_overrides_earlier():
    prog = d.device_program([{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                             {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"}])
    assert run(prog, C, R, 1, 3) == 1
    assert run(prog, C, W, 1, 3) == 0


def test_no_rule_denies():
    assert run(d.device_program([]), C, R, 1, 3) == 0


def test_bad_rule_names_the_field():
    with pytest.raises(ConfigError) as e:
        d.device_program([{"allow": True, "type": "x"}])
    assert "linux.resources.devices[0].type" in str(e.value)


def test_catch_all_rule_ends_the_program():
    # The kernel's verifier refuses unreachable instructions: nothing may follow a rule matching all.
    prog = d.device_program([{"allow": False, "access": "rwm"},
                             {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}])
    last = struct.unpack_from("<BBhi", prog, len(prog) - 16)
    assert last[0] == d.MOV64_K and last[3] == 0  # the deny-all verdict is the end
    assert run(prog, C, R, 1, 3) == 1 and run(prog, C, R, 8, 0) == 0
