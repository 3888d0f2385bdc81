"""The numba interpreter of op-code programs (opcodes.py): Avro bytes in, light-curve columns out.

One call decodes a whole batch, reading each message where it lies (by address and size: a
batch with cutouts is ~100 MB, and copying it into one buffer took longer than decoding it),
with the program of its schema. Nothing is trusted: every read is bounds-checked against the
end of its own message, varints stop at 10 bytes, and lengths and item counts are checked
against the bytes that remain, so a hostile count can neither allocate much nor loop long.
A bad message gets an error code and zero rows; its neighbours are unaffected.

Row outputs grow per message by a bound the message cannot exceed (each row record takes at
least `row_bytes`), and every row write is still checked against the capacity.
"""

from __future__ import annotations

import ctypes

import numpy as np
from numba import carray, njit, types
from numba.extending import intrinsic

from .opcodes import (
    ARRAY, ARRAY_END, BYTES, CAP_FLAG0, CAP_FLOAT0, ENUM, F_DEC, F_FLUX, F_FLUX_ERR, F_MJD, F_RA, FIXED, FORCED,
    I_BAND, I_FLAGS, I_HAS_OBJECT, I_OBJECT_ID, I_SOURCE_ID, JUMP, MAX_DEPTH, N_FLOAT_REGS, N_INT_REGS,
    OPT_FIXED, OPT_VARINT, OPTIONAL, ROW_BEGIN, ROW_END, SKIP, STRING, TRIGGER, UNION, VARINT,
)

# Error codes, per message (0: decoded). `ERRORS` gives each its reason code and description.
OK = 0
E_TRUNCATED = 1
E_VARINT = 2
E_NEGATIVE_LENGTH = 3
E_UNION = 4
E_UTF8 = 5
E_COUNT = 6
E_BLOCK_SIZE = 7
E_ENUM = 8
E_TRAILING = 9
E_NO_TRIGGER = 10
E_ROWS = 11

ERRORS = {
    E_TRUNCATED: ("truncated", "payload ends early"),
    E_VARINT: ("malformed", "varint longer than 10 bytes"),
    E_NEGATIVE_LENGTH: ("malformed", "negative bytes/string length"),
    E_UNION: ("malformed", "union branch index out of range"),
    E_UTF8: ("malformed", "string is not valid UTF-8"),
    E_COUNT: ("truncated", "array/map item count exceeds the bytes left"),
    E_BLOCK_SIZE: ("malformed", "array/map block byte size is negative or exceeds the bytes left"),
    E_ENUM: ("malformed", "enum index out of range"),
    E_TRAILING: ("trailing_bytes", "bytes after the end of the alert record"),
    E_NO_TRIGGER: ("malformed", "the alert has no diaSource"),
    E_ROWS: ("malformed", "more light-curve rows than the payload can hold"),
}

# Output columns of the 2-D row arrays (rows are the second axis, so each column is contiguous).
C_SOURCE_ID, C_BAND, C_FLAGS = 0, 1, 2  # int64 rows
C_MJD, C_FLUX, C_FLUX_ERR = 0, 1, 2  # float64 rows
A_ALERT_ID, A_OBJECT_ID, A_HAS_OBJECT = 0, 1, 2  # int64 per alert
A_RA, A_DEC, A_MJD = 0, 1, 2  # float64 per alert


@njit(cache=True, nogil=True)
def _varint(buf, pos, end):
    """(zig-zag decoded int64, position after it, error code)."""
    if pos >= end:
        return 0, pos, E_TRUNCATED
    b = np.uint64(buf[pos])
    if b < 0x80:  # the common one-byte case
        return np.int64(b >> np.uint64(1)) ^ -np.int64(b & np.uint64(1)), pos + 1, OK
    z = np.uint64(0)
    shift = np.uint64(0)
    start = pos
    last = min(end, pos + 10)  # a varint has at most 10 bytes
    while pos < last:
        b = np.uint64(buf[pos])
        pos += 1
        z |= (b & np.uint64(0x7F)) << shift  # the 10th byte's high bits fall off, as in Java and fastavro
        if b < 0x80:
            return np.int64(z >> np.uint64(1)) ^ -np.int64(z & np.uint64(1)), pos, OK
        shift += np.uint64(7)
    return 0, pos, E_VARINT if pos - start == 10 else E_TRUNCATED


@njit(cache=True, nogil=True)
def _utf8_valid(buf, pos, end):
    """Strict UTF-8 as Python decodes it: no overlongs, surrogates or code points past U+10FFFF."""
    while pos < end:
        b = buf[pos]
        if b < 0x80:
            pos += 1
            continue
        if 0xC2 <= b <= 0xDF:
            n, lo, hi = 1, 0x80, 0xBF
        elif b == 0xE0:
            n, lo, hi = 2, 0xA0, 0xBF
        elif 0xE1 <= b <= 0xEC or b == 0xEE or b == 0xEF:
            n, lo, hi = 2, 0x80, 0xBF
        elif b == 0xED:
            n, lo, hi = 2, 0x80, 0x9F
        elif b == 0xF0:
            n, lo, hi = 3, 0x90, 0xBF
        elif 0xF1 <= b <= 0xF3:
            n, lo, hi = 3, 0x80, 0xBF
        elif b == 0xF4:
            n, lo, hi = 3, 0x80, 0x8F
        else:
            return False
        if end - pos <= n:
            return False
        c = buf[pos + 1]
        if c < lo or c > hi:
            return False
        for k in range(2, n + 1):
            c = buf[pos + k]
            if c < 0x80 or c > 0xBF:
                return False
        pos += n + 1
    return True


@njit(cache=True, nogil=True)
def _band_code(buf, pos, n):
    """Index into columns.BANDS of a one-letter string, else -1 (columns.UNKNOWN_BAND)."""
    if n != 1:
        return -1
    b = buf[pos]
    if b == 117:  # u
        return 0
    if b == 103:  # g
        return 1
    if b == 114:  # r
        return 2
    if b == 105:  # i
        return 3
    if b == 122:  # z
        return 4
    if b == 121:  # y
        return 5
    return -1


@njit(cache=True, nogil=True)
def _store_int(ri, rf, cap, v):
    if cap >= CAP_FLAG0:
        if v != 0:
            ri[I_FLAGS] |= np.int64(1) << np.int64(cap - CAP_FLAG0)
    elif cap >= CAP_FLOAT0:
        rf[cap - CAP_FLOAT0] = np.float64(v)
    else:
        ri[cap] = v
        if cap == I_OBJECT_ID:
            ri[I_HAS_OBJECT] = 1


@njit(cache=True, nogil=True)
def _store_fixed(buf, pos, n, cap, ri, rf, s4, f4, s8, f8):
    """Capture the boolean (n=1), float (4) or double (8) at buf[pos]."""
    if n == 1:
        _store_int(ri, rf, cap, np.int64(buf[pos] != 0))  # like fastavro, any non-zero byte is true
    elif n == 4:
        for k in range(4):
            s4[k] = buf[pos + k]
        rf[cap - CAP_FLOAT0] = f4[0]
    else:
        for k in range(8):
            s8[k] = buf[pos + k]
        rf[cap - CAP_FLOAT0] = f8[0]


@njit(cache=True, nogil=True)
def _run(buf, pos, end, code, pc, stack_left, ri, rf, s4, f4, s8, f8,
         src_i, src_f, n_rows, trigger_row, frc_i, frc_f, n_forced, alert_i, alert_f, m):
    """Walk one record from pos with the program at pc.

    Returns (error, position, rows, forced rows, trigger rows seen); on error the position is
    where the problem was found.
    """
    depth = 0
    items_left = end - pos + 1  # every array item in the record, zero-size items included
    triggers = 0
    while True:
        op = code[pc]
        if op == OPT_FIXED:  # the most common case: a run of nullable floats, booleans and doubles
            q = pc + 2
            roomy = end - pos >= 9 * code[pc + 1]  # no field of the run can reach the end
            for _ in range(code[pc + 1]):
                if not roomy and pos >= end:
                    return E_TRUNCATED, pos, n_rows, n_forced, triggers
                b = buf[pos]
                if b == 2 * code[q]:  # the null branch's index (one zig-zag byte): keep the default
                    pos += 1
                else:
                    if b == 2 - 2 * code[q]:
                        p = pos + 1
                    else:  # an over-long index varint, or a bad one
                        roomy = False  # longer than the 9 bytes a field was allowed above
                        branch, p, err = _varint(buf, pos, end)
                        if err != OK:
                            return err, pos, n_rows, n_forced, triggers
                        if branch == code[q]:
                            pos = p
                            q += 3
                            continue
                        if branch != 1 - code[q]:
                            return E_UNION, pos, n_rows, n_forced, triggers
                    n = code[q + 1]
                    if not roomy and end - p < n:
                        return E_TRUNCATED, p, n_rows, n_forced, triggers
                    if code[q + 2] >= 0:
                        _store_fixed(buf, p, n, code[q + 2], ri, rf, s4, f4, s8, f8)
                    pos = p + n
                q += 3
            pc = q
            continue
        if op == OPT_VARINT:
            branch, p, err = _varint(buf, pos, end)
            if err != OK:
                return err, pos, n_rows, n_forced, triggers
            if branch == code[pc + 1]:  # null
                pos = p
                pc += 3
                continue
            if branch != 1 - code[pc + 1]:
                return E_UNION, pos, n_rows, n_forced, triggers
            pos = p
            pc += 1  # now at the operand of a plain VARINT (cap)
            op = VARINT
        if op == SKIP or op == FIXED:
            n = code[pc + 1]
            if end - pos < n:
                return E_TRUNCATED, pos, n_rows, n_forced, triggers
            if op == FIXED and code[pc + 2] >= 0:
                _store_fixed(buf, pos, n, code[pc + 2], ri, rf, s4, f4, s8, f8)
            pos += n
            pc += 2 if op == SKIP else 3
        elif op == VARINT:
            v, p, err = _varint(buf, pos, end)
            if err != OK:
                return err, pos, n_rows, n_forced, triggers
            if code[pc + 1] >= 0:
                _store_int(ri, rf, code[pc + 1], v)
            pos = p
            pc += 2
        elif op == BYTES or op == STRING:
            n, p, err = _varint(buf, pos, end)
            if err != OK:
                return err, pos, n_rows, n_forced, triggers
            if n < 0:
                return E_NEGATIVE_LENGTH, pos, n_rows, n_forced, triggers
            if n > end - p:
                return E_TRUNCATED, pos, n_rows, n_forced, triggers
            if op == STRING:
                if not _utf8_valid(buf, p, p + n):
                    return E_UTF8, pos, n_rows, n_forced, triggers
                if code[pc + 1] == I_BAND:
                    ri[I_BAND] = _band_code(buf, p, n)
                pc += 2
            else:
                pc += 1
            pos = p + n
        elif op == OPTIONAL or op == UNION:
            branch, p, err = _varint(buf, pos, end)
            if err != OK:
                return err, pos, n_rows, n_forced, triggers
            if op == OPTIONAL:
                if branch == code[pc + 1]:  # null: skip T's code
                    pc += code[pc + 2]
                elif branch == 1 - code[pc + 1]:
                    pc += 3
                else:
                    return E_UNION, pos, n_rows, n_forced, triggers
            else:
                if branch < 0 or branch >= code[pc + 1]:
                    return E_UNION, pos, n_rows, n_forced, triggers
                pc += code[pc + 2 + branch]
            pos = p
        elif op == JUMP:
            pc += code[pc + 1]
        elif op == ARRAY or op == ARRAY_END:
            at = pc if op == ARRAY else pc - code[pc + 1]
            if op == ARRAY_END:
                stack_left[depth - 1] -= 1
                if stack_left[depth - 1] > 0:
                    pc = at + 3
                    continue
            count, p, err = _varint(buf, pos, end)  # the next block's item count
            if err != OK:
                return err, pos, n_rows, n_forced, triggers
            pos = p
            if count < 0:  # a negative count is followed by the block's size in bytes
                count = -count
                size, p, err = _varint(buf, pos, end)
                if err != OK:
                    return err, pos, n_rows, n_forced, triggers
                if size < 0 or size > end - p:
                    return E_BLOCK_SIZE, pos, n_rows, n_forced, triggers
                pos = p
            if count == 0:
                if op == ARRAY_END:
                    depth -= 1
                pc = at + code[at + 1]
                continue
            items_left -= count
            if count < 0 or items_left < 0 or count > (end - pos) // max(code[at + 2], 1):
                return E_COUNT, pos, n_rows, n_forced, triggers
            if op == ARRAY:
                if depth >= MAX_DEPTH:
                    return E_COUNT, pos, n_rows, n_forced, triggers
                depth += 1
            stack_left[depth - 1] = count
            pc = at + 3
        elif op == ROW_BEGIN:
            ri[:] = 0
            ri[I_BAND] = -1
            rf[:] = np.nan
            pc += 2
        elif op == ROW_END:
            table = code[pc + 1]
            if table == FORCED:
                if n_forced >= frc_i.shape[1]:
                    return E_ROWS, pos, n_rows, n_forced, triggers
                r = n_forced
                n_forced += 1
                out_i = frc_i
                out_f = frc_f
            else:
                if table == TRIGGER:
                    triggers += 1
                    if triggers > 1 or trigger_row >= src_i.shape[1]:
                        return E_ROWS, pos, n_rows, n_forced, triggers
                    r = trigger_row
                    alert_i[A_ALERT_ID, m] = ri[I_SOURCE_ID]
                    alert_i[A_OBJECT_ID, m] = ri[I_OBJECT_ID]
                    alert_i[A_HAS_OBJECT, m] = ri[I_HAS_OBJECT]
                    alert_f[A_RA, m] = rf[F_RA]
                    alert_f[A_DEC, m] = rf[F_DEC]
                    alert_f[A_MJD, m] = rf[F_MJD]
                else:
                    if n_rows >= src_i.shape[1]:
                        return E_ROWS, pos, n_rows, n_forced, triggers
                    r = n_rows
                    n_rows += 1
                out_i = src_i
                out_f = src_f
            out_i[C_SOURCE_ID, r] = ri[I_SOURCE_ID]
            out_i[C_BAND, r] = ri[I_BAND]
            out_i[C_FLAGS, r] = ri[I_FLAGS]
            out_f[C_MJD, r] = rf[F_MJD]
            out_f[C_FLUX, r] = rf[F_FLUX]
            out_f[C_FLUX_ERR, r] = rf[F_FLUX_ERR]
            pc += 2
        elif op == ENUM:
            v, p, err = _varint(buf, pos, end)
            if err != OK:
                return err, pos, n_rows, n_forced, triggers
            if v < 0 or v >= code[pc + 1]:
                return E_ENUM, pos, n_rows, n_forced, triggers
            pos = p
            pc += 2
        else:  # END
            return OK, pos, n_rows, n_forced, triggers


@njit(cache=True, nogil=True)
def _grow(a, need):
    """a [k, cap] with at least `need` columns of room (doubling), keeping the contents."""
    if need <= a.shape[1]:
        return a
    out = np.empty((a.shape[0], max(need, 2 * a.shape[1])), a.dtype)
    out[:, : a.shape[1]] = a
    return out


# The address of a bytes object's buffer (CPython's C API). Valid while the object lives: the
# caller of scan_batch/record_ends keeps the objects whose addresses it passes.
address_of = ctypes.pythonapi.PyBytes_AsString
address_of.argtypes = [ctypes.py_object]
address_of.restype = ctypes.c_void_p


@intrinsic
def _pointer(typingctx, address):
    """A uint8* from an integer address (of a bytes object's buffer, which the caller keeps alive)."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
    return types.CPointer(types.uint8)(types.int64), codegen


@njit(cache=True, nogil=True)
def scan_batch(addresses, sizes, body_start, prog_at, code, source_row_bytes, forced_row_bytes):
    """Decode every message i with prog_at[i] >= 0, in place: no message is copied.

    Message i is the sizes[i] bytes at addresses[i]; its Avro body starts at body_start. Returns
    (error [n], error_pos [n], alert_i [3, n], alert_f [3, n], source offsets [n+1], source rows
    int64 [3, m] and float64 [3, m], forced offsets [n+1], forced rows [3, k] x2). The alert's
    diaSource is its first source row. A message with prog_at < 0 is left alone (zero rows,
    error 0: the caller has judged it already).
    """
    n = len(sizes)
    error = np.zeros(n, np.int32)
    error_pos = np.zeros(n, np.int64)
    alert_i = np.zeros((3, n), np.int64)
    alert_f = np.full((3, n), np.nan)
    src_off = np.zeros(n + 1, np.int64)
    frc_off = np.zeros(n + 1, np.int64)
    src_i = np.empty((3, 64 * n + 16), np.int64)
    src_f = np.empty((3, 64 * n + 16), np.float64)
    frc_i = np.empty((3, 16), np.int64)
    frc_f = np.empty((3, 16), np.float64)
    stack_left = np.zeros(MAX_DEPTH, np.int64)  # items left in the current block, per open array
    ri = np.zeros(N_INT_REGS, np.int64)
    rf = np.zeros(N_FLOAT_REGS, np.float64)
    s4 = np.zeros(4, np.uint8)
    s8 = np.zeros(8, np.uint8)
    f4 = s4.view(np.float32)
    f8 = s8.view(np.float64)
    n_rows = 0
    n_forced = 0
    for m in range(n):
        if prog_at[m] >= 0:
            size = sizes[m]
            buf = carray(_pointer(addresses[m]), (size,))
            # Room for every row this message could hold: each row record takes >= row_bytes.
            if source_row_bytes[m] > 0:
                need = n_rows + size // source_row_bytes[m] + 2
                src_i = _grow(src_i, need)
                src_f = _grow(src_f, need)
            if forced_row_bytes[m] > 0:
                need = n_forced + size // forced_row_bytes[m] + 1
                frc_i = _grow(frc_i, need)
                frc_f = _grow(frc_f, need)
            trigger_row = n_rows
            err, pos, rows, forced, triggers = _run(
                buf, body_start, size, code, prog_at[m], stack_left, ri, rf, s4, f4, s8, f8,
                src_i, src_f, n_rows + 1, trigger_row, frc_i, frc_f, n_forced, alert_i, alert_f, m)
            if err == OK and pos != size:
                err = E_TRAILING
            if err == OK and triggers != 1:
                err = E_NO_TRIGGER
            if err == OK:
                n_rows = rows
                n_forced = forced
            else:
                error[m] = err
                error_pos[m] = pos - body_start
                alert_i[:, m] = 0
                alert_f[:, m] = np.nan
        src_off[m + 1] = n_rows
        frc_off[m + 1] = n_forced
    return (error, error_pos, alert_i, alert_f, src_off, src_i[:, :n_rows], src_f[:, :n_rows],
            frc_off, frc_i[:, :n_forced], frc_f[:, :n_forced])


@njit(cache=True, nogil=True)
def record_ends(address, size, pos, n_records, code):
    """Where each of n_records consecutive records starting at pos ends, in the `size` bytes at
    `address` (a container-file block). `code` is a skipper program (opcodes.compile_skipper).

    Returns (ends [n_records], error, error position); after an error the remaining ends are -1.
    """
    buf = carray(_pointer(address), (size,))
    ends = np.full(n_records, -1, np.int64)
    stack_left = np.zeros(MAX_DEPTH, np.int64)
    ri = np.zeros(N_INT_REGS, np.int64)
    rf = np.zeros(N_FLOAT_REGS, np.float64)
    s4 = np.zeros(4, np.uint8)
    s8 = np.zeros(8, np.uint8)
    no_i = np.zeros((3, 0), np.int64)
    no_f = np.zeros((3, 0), np.float64)
    for k in range(n_records):
        err, pos, _, _, _ = _run(buf, pos, size, code, 0, stack_left, ri, rf, s4, s4.view(np.float32),
                                 s8, s8.view(np.float64), no_i, no_f, 0, 0, no_i, no_f, 0, no_i, no_f, 0)
        if err != OK:
            return ends, err, pos
        ends[k] = pos
    return ends, OK, pos
