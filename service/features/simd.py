"""Explicit SIMD vectors for numba kernels: 32 x float32 (two 512-bit registers) or 8 x float64 (one).

LLVM does not keep array-held accumulators in registers across a loop (it cannot prove they do not
alias the inputs), which halves the periodogram scan's speed; these intrinsics make the vectors
LLVM values instead. The vector type follows the dtype of the array it is loaded from or shaped
like, so one kernel compiles for both precisions. On CPUs without AVX-512, LLVM splits each
vector into narrower registers.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model


class Vector(types.Type):
    def __init__(self, dtype: types.Float, lanes: int):
        self.dtype = dtype
        self.lanes = lanes
        super().__init__(name=f"Vector({dtype}, {lanes})")


FLOAT32X32 = Vector(types.float32, 32)
FLOAT64X8 = Vector(types.float64, 8)
_BY_DTYPE = {types.float32: FLOAT32X32, types.float64: FLOAT64X8}


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _llvm_vector(fe_type))


def _llvm_vector(vec: Vector) -> ir.VectorType:
    return ir.VectorType(ir.FloatType() if vec.dtype == types.float32 else ir.DoubleType(), vec.lanes)


def _vector_of(array) -> Vector | None:
    if isinstance(array, types.Array) and array.layout == "C":
        return _BY_DTYPE.get(array.dtype)
    return None


def _lanes_ptr(context, builder, array_type, array, start, vec: Vector):
    ary = context.make_array(array_type)(context, builder, array)
    return builder.bitcast(builder.gep(ary.data, [start]), _llvm_vector(vec).as_pointer())


@intrinsic
def lanes_of(typingctx, array):
    """Lanes of the vector type matching array's dtype (32 for float32, 8 for float64)."""
    vec = _vector_of(array)
    if vec is None:
        return None

    def codegen(context, builder, sig, args):
        return context.get_constant(types.intp, vec.lanes)
    return types.intp(array), codegen


@intrinsic
def load(typingctx, array, start):
    """array[start:start + lanes] of a C-contiguous float array; no bounds check."""
    vec = _vector_of(array)
    if vec is None or not isinstance(start, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        return builder.load(_lanes_ptr(context, builder, sig.args[0], args[0], args[1], vec), align=4)
    return vec(array, start), codegen


@intrinsic
def store(typingctx, array, start, value):
    """array[start:start + lanes] = value; no bounds check."""
    vec = _vector_of(array)
    if vec is None or value != vec or not isinstance(start, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        builder.store(args[2], _lanes_ptr(context, builder, sig.args[0], args[0], args[1], vec), align=4)
        return context.get_dummy_value()
    return types.void(array, start, value), codegen


@intrinsic
def splat(typingctx, x, like):
    """Every lane = x, in the vector type matching the dtype of array `like`."""
    vec = _vector_of(like)
    if vec is None or not isinstance(x, (types.Float, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        llvm_vec = _llvm_vector(vec)
        value = context.cast(builder, args[0], sig.args[0], vec.dtype)
        one = builder.insert_element(ir.Constant(llvm_vec, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
        mask = ir.Constant(ir.VectorType(ir.IntType(32), vec.lanes), [0] * vec.lanes)
        return builder.shuffle_vector(one, ir.Constant(llvm_vec, ir.Undefined), mask)
    return vec(x, like), codegen


def _same_vectors(*args) -> Vector | None:
    first = args[0]
    return first if isinstance(first, Vector) and all(a == first for a in args) else None


def _binary(emit):
    """An intrinsic op(a, b) over two vectors of one type; emit(builder, vec, args) builds it."""
    @intrinsic
    def op(typingctx, a, b):
        vec = _same_vectors(a, b)
        if vec is None:
            return None

        def codegen(context, builder, sig, args):
            return emit(builder, vec, args)
        return vec(a, b), codegen
    return op


def _instruction(name: str):
    return _binary(lambda builder, vec, args: getattr(builder, name)(*args))


def _llvm_call(name: str):
    return _binary(lambda builder, vec, args: builder.call(_llvm_function(builder, name, vec, 2), args))


add = _instruction("fadd")
sub = _instruction("fsub")
mul = _instruction("fmul")
div = _instruction("fdiv")


def _llvm_function(builder, name: str, vec: Vector, arity: int):
    suffix = f"v{vec.lanes}f{32 if vec.dtype == types.float32 else 64}"
    llvm_vec = _llvm_vector(vec)
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(llvm_vec, [llvm_vec] * arity),
                                          f"{name}.{suffix}")


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c with one rounding."""
    vec = _same_vectors(a, b, c)
    if vec is None:
        return None

    def codegen(context, builder, sig, args):
        return builder.call(_llvm_function(builder, "llvm.fma", vec, 3), args)
    return vec(a, b, c), codegen


maximum = _llvm_call("llvm.maxnum")
minimum = _llvm_call("llvm.minnum")


@intrinsic
def where_greater(typingctx, a, b, then, otherwise):
    """Lane-wise a > b ? then : otherwise (false when either side is NaN)."""
    vec = _same_vectors(a, b, then, otherwise)
    if vec is None:
        return None

    def codegen(context, builder, sig, args):
        return builder.select(builder.fcmp_ordered(">", args[0], args[1]), args[2], args[3])
    return vec(a, b, then, otherwise), codegen
