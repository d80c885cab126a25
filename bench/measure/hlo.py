"""What a compiled module's optimized HLO text says: how many instructions and fusions run, and
in which element types every matmul (``dot``) really computes, after the compiler's rewrites."""

from __future__ import annotations

import dataclasses
import re

_HEAD = re.compile(r"^(?:ENTRY\s+)?%([\w.\-]+)\s*\((.*)\)\s*->.*\{\s*$")
_INST = re.compile(r"^\s*(?:ROOT\s+)?%([\w.\-]+)\s*=\s*(\w+)\[[^\]]*\]\S*\s+([\w\-]+)\((.*)$")
_OPERAND = re.compile(r"%([\w.\-]+)")
_CALLS = re.compile(r"calls=%([\w.\-]+)")
_PARAM_INDEX = re.compile(r"parameter\((\d+)\)")
#: instructions that move or reshape values without changing them
_MOVES = ("copy", "transpose", "bitcast", "reshape", "broadcast", "slice", "dynamic-slice")


def counts(hlo_text: str) -> dict[str, int]:
    """Instruction and fusion counts of optimized HLO text.

    ``hlo_ops`` counts instructions in the computations that run (not inside fused
    computations, which XLA emits as one kernel each); ``hlo_fusions`` counts fusion calls.
    """
    ops = fusions = 0
    in_fused = False
    for line in hlo_text.splitlines():
        stripped = line.strip()
        if stripped.endswith("{") and (
            "computation" in stripped or stripped.startswith("%") or stripped.startswith("ENTRY")
        ):
            head = stripped.split(" ", 2)
            name = head[1] if head[0] == "ENTRY" else head[0]
            in_fused = "fused" in name or ("fusion" in name and not stripped.startswith("ENTRY"))
            continue
        if stripped == "}":
            in_fused = False
            continue
        if " = " in stripped and not in_fused and not stripped.startswith("//"):
            ops += 1
            if " fusion(" in stripped:
                fusions += 1
    return {"hlo_ops": ops, "hlo_fusions": fusions}


@dataclasses.dataclass
class _Inst:
    name: str
    dtype: str
    opcode: str
    operands: list[str]
    calls: str | None
    param: int | None
    root: bool


def _parse(hlo_text: str) -> tuple[dict[str, dict[str, _Inst]], dict[str, tuple[str, list[str]]]]:
    """Computations (name -> instructions) and, for each called computation, its caller (the
    calling computation and the call's operands)."""
    comps: dict[str, dict[str, _Inst]] = {}
    current: dict[str, _Inst] | None = None
    for line in hlo_text.splitlines():
        if m := _HEAD.match(line.strip()):
            current = comps.setdefault(m.group(1), {})
            continue
        if current is None or not (m := _INST.match(line)):
            continue
        name, dtype, opcode, rest = m.groups()
        args = rest.split(")", 1)[0]
        calls = _CALLS.search(rest)
        param = _PARAM_INDEX.search(line) if opcode == "parameter" else None
        current[name] = _Inst(
            name,
            dtype,
            opcode,
            _OPERAND.findall(args),
            calls.group(1) if calls else None,
            int(param.group(1)) if param else None,
            line.lstrip().startswith("ROOT"),
        )
    callers = {
        i.calls: (comp, i.operands)
        for comp, insts in comps.items()
        for i in insts.values()
        if i.calls
    }
    return comps, callers


def _holds(comps, callers, comp: str, name: str, low: str, depth: int = 0) -> bool:
    """Whether the value ``name`` of ``comp`` holds ``low`` values: ``low`` typed, or converted
    from a ``low`` value (and moved, reshaped or passed into a fusion since)."""
    inst = comps.get(comp, {}).get(name)
    if inst is None or depth > 50:
        return False
    if inst.dtype == low:
        return True
    again = lambda c, n: _holds(comps, callers, c, n, low, depth + 1)  # noqa: E731
    if inst.opcode == "convert" or inst.opcode in _MOVES:
        return bool(inst.operands) and again(comp, inst.operands[0])
    if inst.opcode == "fusion" and inst.calls:
        root = next((i for i in comps.get(inst.calls, {}).values() if i.root), None)
        return root is not None and again(inst.calls, root.name)
    if inst.opcode == "parameter" and comp in callers and inst.param is not None:
        caller, operands = callers[comp]
        return inst.param < len(operands) and again(caller, operands[inst.param])
    return False


def dots(hlo_text: str, low: str = "bf16") -> list[dict[str, object]]:
    """Every ``dot`` of the module: its output and operand element types, and whether each
    operand holds ``low`` values (XLA:CPU, for one, runs a transposed bfloat16 dot as a float32
    dot of bfloat16 values: same products, same float32 sums)."""
    comps, callers = _parse(hlo_text)
    out = []
    for comp, insts in comps.items():
        for inst in insts.values():
            if inst.opcode != "dot" or len(inst.operands) < 2:
                continue
            types = [insts[o].dtype if o in insts else "?" for o in inst.operands[:2]]
            holds = [_holds(comps, callers, comp, o, low) for o in inst.operands[:2]]
            out.append({"name": inst.name, "out": inst.dtype, "operands": types, "low": holds})
    return out


#: instructions that launch nothing: they name, bundle or pick apart values already in memory
#: (a ``while``, ``conditional`` or ``call`` runs the kernels of the computations it calls)
_NO_KERNEL = frozenset(
    {
        "parameter",
        "constant",
        "get-tuple-element",
        "tuple",
        "bitcast",
        "opt-barrier",
        "after-all",
        "add-dependency",
        "partition-id",
        "replica-id",
        "domain",
    }
)
_OPCODE = re.compile(r"=\s.*?\s([a-z][\w\-]*)\(")
_ATTR = re.compile(r"\b(body|condition|to_apply|calls)=%([\w.\-]+)")
_BRANCHES = re.compile(r"branch_computations=\{([^}]*)\}")
_TRIP = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')


def launches(hlo_text: str) -> int | None:
    """Kernels one call of the compiled module launches: every instruction that runs in the
    entry computation, a loop body's counted as many times as the loop's known trip count
    (XLA's ``known_trip_count``), a ``conditional``'s as its dearest branch's, a ``call``'s as
    the called computation's; what is fused runs inside its fusion's one kernel. An
    ``-start``/``-done`` pair is one launch. None when a loop's trip count is not known, or
    there is no entry computation.
    """
    comps: dict[str, list[str]] = {}
    entry = None
    current: list[str] | None = None
    for line in hlo_text.splitlines():
        if m := _HEAD.match(line.strip()):
            current = comps.setdefault(m.group(1), [])
            if line.lstrip().startswith("ENTRY"):
                entry = m.group(1)
            continue
        if line.strip() == "}":
            current = None
        elif current is not None and " = " in line and not line.lstrip().startswith("//"):
            current.append(line)

    def count(name: str, depth: int = 0) -> int | None:
        if name not in comps or depth > 20:
            return None
        total = 0
        for line in comps[name]:
            if not (m := _OPCODE.search(line)):
                continue
            opcode = m.group(1)
            attrs = dict(_ATTR.findall(line))
            if opcode == "while":
                trip = _TRIP.search(line)
                body = count(attrs.get("body", ""), depth + 1)
                cond = count(attrs.get("condition", ""), depth + 1)
                if trip is None or body is None or cond is None:
                    return None
                total += int(trip.group(1)) * (body + cond) + cond
            elif opcode == "conditional":
                branches = _BRANCHES.search(line)
                names = _OPERAND.findall(branches.group(1)) if branches else []
                costs = [count(n, depth + 1) for n in names]
                if not costs or any(c is None for c in costs):
                    return None
                total += 1 + max(costs)  # the predicate read, then one branch
            elif opcode == "call":
                inner = count(attrs.get("to_apply", ""), depth + 1)
                if inner is None:
                    return None
                total += inner
            elif opcode not in _NO_KERNEL and not opcode.endswith("-done"):
                total += 1
        return total

    return count(entry) if entry else None
