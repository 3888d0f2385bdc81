"""Compile an Avro writer schema into a flat op-code program for the numba scanner (scanner.py).

A program is an int64 array of op codes, each followed by its operands. Records are inlined,
named types resolved, and runs of fixed-size values merged into one SKIP. All jumps are
relative to the op that jumps, so programs can be concatenated. The scanner walks the bytes of
a record with it, skipping what it does not need and capturing the light-curve columns:

- fields of the `diaSource` record (the triggering detection, "row table" TRIGGER),
- fields of each `prvDiaSources` item (PRV) and, when asked, each `prvDiaForcedSources` item (FORCED).

Which field feeds which column comes from `fields.py` (the only place that knows the names of
every schema version); there is no per-version code here.

Op codes and their operands (cap is a capture register, -1 for none):

    END                                  the record is complete
    SKIP n                               skip n bytes (float, double, boolean, fixed; merged runs)
    VARINT cap                           an int or long
    FIXED n cap                          a boolean (n=1), float (4) or double (8) to capture
    OPT_FIXED k (null_branch n cap)*k    a run of k [null, boolean/float/double] unions
    OPT_VARINT null_branch cap           a [null, int/long] union
    BYTES                                skip a length-prefixed bytes value
    STRING cap                           a length-prefixed string, its UTF-8 validated (cap: band)
    ENUM n_symbols                       skip an enum index, checking its range
    OPTIONAL null_branch to_after        any other [null, T] union; T's code follows, to_after skips it
    UNION n off_0 ... off_n-1            any union; branch k starts at this op + off_k, ends in JUMP
    JUMP offset                          pc += offset
    ARRAY to_after min_item_bytes        an array (or map) whose item code follows and ends in ARRAY_END
    ARRAY_END back                       next item, or next block; `back` is the distance to ARRAY
    ROW_BEGIN table / ROW_END table      start / emit one row of a row table
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .fields import FLAG_FIELDS, field_names, source_field_map
from .schema_walk import alert_record_types

# --- op codes ------------------------------------------------------------------------------
END = 0
SKIP = 1
VARINT = 2
FIXED = 3
OPT_FIXED = 4
OPT_VARINT = 5
BYTES = 6
STRING = 7
ENUM = 8
OPTIONAL = 9
UNION = 10
JUMP = 11
ARRAY = 12
ARRAY_END = 13
ROW_BEGIN = 14
ROW_END = 15

# --- row tables ----------------------------------------------------------------------------
TRIGGER = 0  # the alert's diaSource: row 0 of the alert's sources, and the alert-level columns
PRV = 1  # prvDiaSources items: the following rows of the alert's sources
FORCED = 2  # prvDiaForcedSources items

# --- capture registers ---------------------------------------------------------------------
# Integer registers (index into the scanner's int64 register array).
I_SOURCE_ID = 0
I_OBJECT_ID = 1  # storing it also sets I_HAS_OBJECT
I_FLAGS = 2
I_BAND = 3
I_HAS_OBJECT = 4
N_INT_REGS = 5
# Float registers: capture code CAP_FLOAT0 + index into the float64 register array.
CAP_FLOAT0 = 8
F_MJD = 0
F_FLUX = 1
F_FLUX_ERR = 2
F_RA = 3
F_DEC = 4
N_FLOAT_REGS = 5
# Boolean flag fields (v7+): capture code CAP_FLAG0 + bit sets that bit of I_FLAGS when true.
CAP_FLAG0 = 16

_ROW_CAPTURES = {
    "source_id": I_SOURCE_ID,
    "mjd": CAP_FLOAT0 + F_MJD,
    "band": I_BAND,
    "flux": CAP_FLOAT0 + F_FLUX,
    "flux_err": CAP_FLOAT0 + F_FLUX_ERR,
}
_TRIGGER_CAPTURES = {
    **_ROW_CAPTURES,
    "object_id": I_OBJECT_ID,
    "ra": CAP_FLOAT0 + F_RA,
    "dec": CAP_FLOAT0 + F_DEC,
}

MAX_DEPTH = 32  # nested arrays/maps; the scanner's stack has this many frames

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_FIXED_SIZE = {"boolean": 1, "float": 4, "double": 8}


class UnsupportedSchema(ValueError):
    """The schema uses something the op codes do not cover; decode it with the fallback."""


@dataclass(frozen=True)
class Program:
    code: np.ndarray  # int64
    source_row_bytes: int  # fewest bytes a TRIGGER/PRV row record can take (0: the program has none)
    forced_row_bytes: int  # the same for FORCED rows (0: the program captures none)


def compile_alert(definition: dict[str, Any], include_forced: bool) -> Program:
    """The program that extracts the light-curve columns from one alert record.

    ValueError if the schema has no diaSource record; UnsupportedSchema if it needs an Avro
    feature the op codes lack (e.g. a recursive type).
    """
    alert_record_types(definition)  # ValueError unless there is a diaSource record
    roles = {"diaSource": TRIGGER, "prvDiaSources": PRV}
    if include_forced:
        roles["prvDiaForcedSources"] = FORCED
    return _Compiler(definition, roles).program(definition)


def compile_skipper(definition: dict[str, Any]) -> Program:
    """A program that captures nothing: it only finds where a record ends (container files)."""
    return _Compiler(definition, {}).program(definition)


def _split_name(name: str, namespace: str | None) -> tuple[str, str | None]:
    """(full name, namespace of the types defined inside it), by Avro's naming rules."""
    if "." in name:
        return name, name.rsplit(".", 1)[0]
    return (f"{namespace}.{name}" if namespace else name), namespace


class _Compiler:
    def __init__(self, definition: dict[str, Any], roles: dict[str, int]):
        self.roles = roles
        self.named: dict[str, tuple[dict[str, Any], str, str | None]] = {}  # full name -> (node, full, inner ns)
        self._collect(definition, None)
        self.code: list[int] = []
        self.last_op = -1  # where the last op starts
        self.barrier = 0  # a jump lands here: never merge a SKIP across it
        self.active: list[str] = []  # records being compiled, outermost first (refuses recursion)
        self.depth = 0
        self.row_bytes: dict[int, list[int]] = {TRIGGER: [], PRV: [], FORCED: []}  # sizes of each role's records

    def program(self, definition: dict[str, Any]) -> Program:
        self.compile(definition, None, cap=None, role=None)
        self.emit(END)
        sources = self.row_bytes[TRIGGER] + self.row_bytes[PRV]
        forced = self.row_bytes[FORCED]
        return Program(
            code=np.array(self.code, np.int64),
            source_row_bytes=max(1, min(sources)) if sources else 0,
            forced_row_bytes=max(1, min(forced)) if forced else 0,
        )

    # --- named types ---
    def _collect(self, node: Any, namespace: str | None) -> None:
        if isinstance(node, list):
            for branch in node:
                self._collect(branch, namespace)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in ("record", "error", "enum", "fixed"):
                full, namespace = _split_name(node["name"], node.get("namespace", namespace))
                self.named.setdefault(full, (node, full, namespace))
            if kind in ("record", "error"):
                for f in node["fields"]:
                    self._collect(f["type"], namespace)
            elif kind == "array":
                self._collect(node["items"], namespace)
            elif kind == "map":
                self._collect(node["values"], namespace)
            elif isinstance(kind, (dict, list)):
                self._collect(kind, namespace)

    def _resolve(self, name: str, namespace: str | None) -> tuple[dict[str, Any], str, str | None]:
        if namespace and "." not in name and f"{namespace}.{name}" in self.named:
            return self.named[f"{namespace}.{name}"]
        if name in self.named:
            return self.named[name]
        raise UnsupportedSchema(f"unknown type name {name!r}")

    def _named(self, t: Any, namespace: str | None) -> tuple[Any, str | None, str | None]:
        """(definition, full name or None, namespace inside it) of t, following a name reference."""
        if isinstance(t, dict):
            kind = t["type"]
            if kind in ("record", "error", "enum", "fixed"):
                full, inner = _split_name(t["name"], t.get("namespace", namespace))
                return t, full, inner
            if isinstance(kind, (dict, list)):
                return self._named(kind, namespace)
            if kind in _PRIMITIVES or kind in ("array", "map"):
                return (t if kind in ("array", "map") else kind), None, namespace
            t = kind
        if isinstance(t, str) and t not in _PRIMITIVES:
            return self._resolve(t, namespace)
        return t, None, namespace

    # --- emission ---
    def emit(self, *ops: int) -> int:
        self.last_op = at = len(self.code)
        self.code.extend(ops)
        return at

    def label(self) -> int:
        self.barrier = len(self.code)
        return self.barrier

    def skip(self, n: int) -> None:
        if self.last_op >= self.barrier and self.last_op >= 0 and self.code[self.last_op] == SKIP:
            self.code[self.last_op + 1] += n
        else:
            self.emit(SKIP, n)

    def opt_fixed(self, null_branch: int, n: int, cap: int) -> None:
        """Most fields of a DiaSource: runs of them become one op the scanner loops over tightly."""
        if self.last_op >= self.barrier and self.last_op >= 0 and self.code[self.last_op] == OPT_FIXED:
            self.code[self.last_op + 1] += 1
            self.code.extend((null_branch, n, cap))
        else:
            self.emit(OPT_FIXED, 1, null_branch, n, cap)

    # --- types ---
    def compile(self, t: Any, namespace: str | None, cap: int | None, role: int | None) -> None:
        if isinstance(t, list):
            return self.union(t, namespace, cap, role)
        t, full, namespace = self._named(t, namespace)
        if isinstance(t, str):
            return self.primitive(t, cap)
        kind = t["type"]
        if kind in ("record", "error"):
            return self.record(t, full, namespace, cap, role)
        if kind == "array":
            return self.array(t["items"], None, namespace, cap, role)
        if kind == "map":
            return self.array(t["values"], STRING, namespace, cap, role)
        self.no_capture(cap, kind)
        if kind == "enum":
            self.emit(ENUM, len(t["symbols"]))
        elif kind == "fixed":
            self.skip(int(t["size"]))
        else:
            raise UnsupportedSchema(f"unknown Avro type {kind!r}")

    def primitive(self, t: str, cap: int | None) -> None:
        if t == "null":
            return
        if cap is not None and not _can_capture(t, cap):
            raise UnsupportedSchema(f"cannot capture a {t} into column register {cap}")
        if t in _FIXED_SIZE:
            if cap is None:
                self.skip(_FIXED_SIZE[t])
            else:
                self.emit(FIXED, _FIXED_SIZE[t], cap)
        elif t == "bytes":
            self.emit(BYTES)
        else:
            self.emit(VARINT if t in ("int", "long") else STRING, -1 if cap is None else cap)

    @staticmethod
    def no_capture(cap: int | None, what: str) -> None:
        if cap is not None:
            raise UnsupportedSchema(f"cannot capture a {what} into column register {cap}")

    def record(self, t: dict[str, Any], full: str, namespace: str | None, cap: int | None, role: int | None) -> None:
        self.no_capture(cap, "record")
        if full in self.active:
            raise UnsupportedSchema(f"recursive type {full}")
        top_level = not self.active  # the alert record itself: its fields may have roles
        self.active.append(full)
        captures: dict[str, int] = {}
        if role is not None:
            captures = _captures(t, role)
            self.row_bytes[role].append(self.min_bytes(t, namespace))
            self.emit(ROW_BEGIN, role)
        for f in t["fields"]:
            field_role = self.roles.get(f["name"]) if top_level else None
            self.compile(f["type"], namespace, captures.get(f["name"]), field_role)
        if role is not None:
            self.emit(ROW_END, role)
        self.active.pop()

    def union(self, branches: list[Any], namespace: str | None, cap: int | None, role: int | None) -> None:
        nulls = [k for k, b in enumerate(branches) if self._named(b, namespace)[0] == "null"]
        if len(branches) == 2 and len(nulls) == 1:
            null_branch = nulls[0]
            other = self._named(branches[1 - null_branch], namespace)[0]
            other = other if isinstance(other, str) else None  # a primitive's name, else None
            if cap is not None and other is not None and not _can_capture(other, cap):
                raise UnsupportedSchema(f"cannot capture a {other} into column register {cap}")
            if other in _FIXED_SIZE:
                self.opt_fixed(null_branch, _FIXED_SIZE[other], -1 if cap is None else cap)
            elif other in ("int", "long"):
                self.emit(OPT_VARINT, null_branch, -1 if cap is None else cap)
            else:
                at = self.emit(OPTIONAL, null_branch, 0)
                self.label()
                self.compile(branches[1 - null_branch], namespace, cap, role)
                self.code[at + 2] = self.label() - at
            return
        at = self.emit(UNION, len(branches), *([0] * len(branches)))
        jumps = []
        for k, branch in enumerate(branches):
            self.code[at + 2 + k] = self.label() - at
            self.compile(branch, namespace, cap, role)
            jumps.append(self.emit(JUMP, 0))
        after = self.label()
        for j in jumps:
            self.code[j + 1] = after - j

    def array(self, items: Any, key_op: int | None, namespace: str | None, cap: int | None, role: int | None) -> None:
        self.no_capture(cap, "array")
        if role == TRIGGER:
            raise UnsupportedSchema("diaSource is an array")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise UnsupportedSchema(f"arrays or maps nested deeper than {MAX_DEPTH}")
        min_item = self.min_bytes(items, namespace) + (1 if key_op is not None else 0)
        at = self.emit(ARRAY, 0, min_item)
        self.label()
        if key_op is not None:
            self.emit(key_op, -1)
        self.compile(items, namespace, None, role)
        self.emit(ARRAY_END, len(self.code) - at)
        self.code[at + 1] = self.label() - at
        self.depth -= 1

    def min_bytes(self, t: Any, namespace: str | None, seen: tuple[str, ...] = ()) -> int:
        """The fewest bytes any value of type t encodes to."""
        if isinstance(t, list):
            return 1 + min(self.min_bytes(b, namespace, seen) for b in t)
        t, full, namespace = self._named(t, namespace)
        if isinstance(t, str):
            return {"null": 0, **_FIXED_SIZE}.get(t, 1)
        kind = t["type"]
        if kind in ("record", "error"):
            if full in seen:
                raise UnsupportedSchema(f"recursive type {full}")
            return sum(self.min_bytes(f["type"], namespace, seen + (full,)) for f in t["fields"])
        return int(t["size"]) if kind == "fixed" else 1  # array, map (a 0 count), enum (an index)


def _can_capture(t: str, cap: int) -> bool:
    """Whether a value of primitive type t can feed capture register cap (as FastavroDecoder reads it)."""
    if t in ("int", "long"):
        return True  # an id, the packed flags, a float column (converted) or a flag bit (non-zero)
    if t in ("float", "double"):
        return CAP_FLOAT0 <= cap < CAP_FLAG0
    if t == "boolean":
        return cap >= CAP_FLAG0
    return t == "string" and cap == I_BAND


def _captures(record: dict[str, Any], role: int) -> dict[str, int]:
    """Field name -> capture register for one row record, from the version table in fields.py."""
    wanted = _TRIGGER_CAPTURES if role == TRIGGER else _ROW_CAPTURES
    field_map = source_field_map(record)
    captures = {field_map[column]: cap for column, cap in wanted.items() if column in field_map}
    # v7+ boolean flag fields packed as bits, like fields.pack_flags (older versions have none).
    names = field_names(record)
    captures.update({name: CAP_FLAG0 + bit for bit, name in enumerate(FLAG_FIELDS) if name in names})
    return captures
