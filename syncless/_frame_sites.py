"""The value-stack depth of a code object's call sites, for the collector.

A suspended tasklet's frames are executing frames: CPython keeps their
value-stack depth in a local variable of the interpreter loop, so the
collector cannot see what those stacks hold. Where a frame is suspended in a
call or in a for-loop step, the depth is the one the compiler's stack model
gives at that instruction (the operands stay on the stack while the call
runs), so the core can visit them (scheduler/frame_chain.cpp). This module
computes the model once per code object, from ``dis``; nothing here runs on
the switch path.
"""
import dis
import sys

ITER, CALL, CALL_KW = 0, 1, 2

_JUMPS = frozenset(getattr(dis, "hasjump", None) or (dis.hasjrel + dis.hasjabs))
_NO_FALLTHROUGH = frozenset(
    dis.opmap[name]
    for name in ("JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT",
                 "RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE")
    if name in dis.opmap)
# Before 3.13 the model leaves out what a resumed generator's first POP_TOP
# pops (the compiler inserts that prefix after computing depths).
_RETURN_GENERATOR = dis.opmap["RETURN_GENERATOR"]
_FOR_ITER = dis.opmap["FOR_ITER"]
_CALL = dis.opmap["CALL"]
_CALL_KW = dis.opmap.get("CALL_KW")
# 3.11 splits a call into PRECALL and CALL; the compiler's model pops the
# arguments at PRECALL, the interpreter only once the call returns.
_PRECALL = dis.opmap.get("PRECALL")


def _effect(instr, jump):
    if instr.opcode == _RETURN_GENERATOR:
        return 1
    if instr.opcode in _JUMPS:
        return dis.stack_effect(instr.opcode, instr.arg, jump=jump)
    return dis.stack_effect(instr.opcode, instr.arg)


def _depths(code, instrs):
    """Depth at the start of each instruction (None where unreachable), or
    None if the model is inconsistent."""
    index = {instr.offset: i for i, instr in enumerate(instrs)}
    depth = [None] * len(instrs)
    work = [(0, 0)]
    for entry in dis.Bytecode(code).exception_entries:
        # The handler starts with the stack cut to `depth`, then lasti (if
        # kept) and the exception pushed.
        work.append((index[entry.target], entry.depth + int(entry.lasti) + 1))
    while work:
        i, d = work.pop()
        while i < len(instrs):
            if depth[i] is not None:
                if depth[i] != d:
                    return None
                break
            if d < 0 or d > code.co_stacksize:
                return None
            depth[i] = d
            instr = instrs[i]
            if instr.opcode in _JUMPS:
                work.append((index[instr.argval], d + _effect(instr, True)))
            if instr.opcode in _NO_FALLTHROUGH:
                break
            d += _effect(instr, False)
            i += 1
    return depth


def call_sites(code):
    """``[(offset, depth, oparg, kind), ...]`` for the code's calls and
    for-loop steps: offset in code units, the stack depth while it runs, the
    instruction's argument, and ITER, CALL or CALL_KW. Empty when the model
    cannot be had (the frames of that code then show only their locals)."""
    instrs = list(dis.get_instructions(code))
    depth = _depths(code, instrs)
    if depth is None:
        return []
    sites = []
    for i, instr in enumerate(instrs):
        d = depth[i]
        if d is None:
            continue
        unit = instr.offset // 2
        if instr.opcode == _FOR_ITER and d >= 1:
            sites.append((unit, d, 0, ITER))
        elif instr.opcode == _PRECALL and d >= instr.arg + 2:
            sites.append((unit, d, instr.arg, CALL))
            after = instrs[i + 1] if i + 1 < len(instrs) else None
            if after is not None and after.opcode == _CALL:
                sites.append((after.offset // 2, d, instr.arg, CALL))
        elif instr.opcode == _CALL and _PRECALL is None and d >= instr.arg + 2:
            sites.append((unit, d, instr.arg, CALL))
        elif instr.opcode == _CALL_KW and d >= instr.arg + 3:
            sites.append((unit, d, instr.arg, CALL_KW))
    return sites


if sys.version_info < (3, 11) or sys.version_info >= (3, 14):
    raise ImportError("syncless supports CPython 3.11, 3.12 and 3.13")
