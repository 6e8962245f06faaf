"""The restricted unpickler of MANO pickles: it creates inert stand-ins only, and arrays are rebuilt afterwards.

Real MANO pickles (``MANO_RIGHT.pkl``, ``MANO_LEFT.pkl``) were written by Python 2 with chumpy
and scipy.sparse objects inside. A pickle can run arbitrary code, and even numpy's own
reconstruction functions are not safe on crafted input (a dtype rebuilt with its flags cleared
makes ``numpy.core.multiarray.scalar`` dereference raw bytes as a pointer; ``numpy.ndarray`` with a
zero stride turns a few bytes into gigabytes). So the unpickler never hands a pickle any real
callable: every allowed global is a stand-in that only records its arguments and state
(``_reconstruct``, ``dtype``, chumpy, scipy.sparse, ``set``). Arrays are rebuilt afterwards by this
module, only for the plain number types of ALLOWED_DTYPES, with the byte count checked against
the shape and every size checked against a bound before anything is allocated. Refusals are
``_Refused`` (no file name); :mod:`dahyf.hand.mano_io` turns them into a ``ModelFileError``.
"""
from __future__ import annotations

import io
import math
import pickle

import numpy as np

#: Most vertices / faces / shape components a MANO-format model may have (MANO: 778, 1538, 10;
#: the open hand model: 3346, 6688, 10). Checked before any array is allocated.
MAX_VERTICES = 20_000
MAX_FACES = 2 * MAX_VERTICES
MAX_SHAPE_COMPONENTS = 400
#: Most elements of one array in a pickle (a (MAX_VERTICES, 3, 135) posedirs fits).
MAX_ARRAY_ELEMENTS = MAX_VERTICES * 3 * 135
#: The dtypes an array or scalar in a MANO pickle may have (numpy type codes: kind + bytes).
ALLOWED_DTYPES = frozenset({"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8"})




class _Refused(Exception):
    """A pickle asks for something a MANO file never holds; the message says what (without the file name)."""


class RefusedGlobal(_Refused, pickle.UnpicklingError):
    """The pickle asks for a global that a MANO file never holds."""


# --- stand-ins: the unpickler only ever creates these; nothing of numpy/scipy/chumpy runs -------
class _Stub:
    """Base of the stand-ins: records constructor arguments and pickled state, runs nothing."""

    what = "object"   # what it stands for, in messages

    def __init__(self, *args, **kwargs):
        self.args = args
        self.state = None

    def __setstate__(self, state):
        self.state = state


class _Inert(_Stub):
    """Stand-in for a chumpy / scipy.sparse object."""

    _kind = "object"

    @property
    def what(self) -> str:
        return f"{self._kind} object"

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] if isinstance(state[0], dict) else {}), **state[1]}
        self.state = state if isinstance(state, dict) else {"x": state}

    def to_numpy(self, depth: int = 0) -> np.ndarray:
        state = self.state if isinstance(self.state, dict) else {}
        if self._kind in ("csc", "csr"):
            return _compressed_to_dense(state, by_column=self._kind == "csc")
        if "x" in state:
            return _to_array(state["x"], depth + 1)
        raise _Refused(f"refused a {self._kind} object it cannot read (state keys: {sorted(map(str, state))})")


class _Chumpy(_Inert):
    _kind = "chumpy"


class _Csc(_Inert):
    _kind = "csc"


class _Csr(_Inert):
    _kind = "csr"


class _DtypeStub(_Stub):
    """Stand-in for ``numpy.dtype(spec, align, copy)`` + its BUILD state; see :meth:`resolve`."""

    what = "numpy dtype"

    def resolve(self) -> np.dtype:
        """The real dtype, only for a plain number type of ALLOWED_DTYPES (byte order from the state)."""
        spec = self.args[0] if self.args else None
        if isinstance(spec, bytes):
            spec = spec.decode("latin1")
        if not isinstance(spec, str) or spec not in ALLOWED_DTYPES:
            raise _Refused(f"refused array type {spec!r}: a MANO file holds only numbers ({', '.join(sorted(ALLOWED_DTYPES))})")
        dtype = np.dtype(spec)
        st = self.state
        if st is not None:
            if not (isinstance(st, tuple) and len(st) >= 5 and all(x is None for x in st[2:5])):
                raise _Refused(f"refused a {spec} array type with sub-arrays or fields")
            if st[1] in ("<", ">") and dtype.itemsize > 1:
                dtype = dtype.newbyteorder(st[1])
            elif st[1] not in ("<", ">", "|", "="):
                raise _Refused(f"refused byte order {st[1]!r}")
        return dtype


class _ArrayStub(_Stub):
    """Stand-in for ``numpy.core.multiarray._reconstruct(ndarray, ...)`` + the array's BUILD state."""

    def resolve(self) -> np.ndarray:
        """The array, rebuilt from its raw bytes after checking dtype, shape, size and byte count."""
        st = self.state
        if not isinstance(st, tuple) or len(st) not in (4, 5):
            raise _Refused("refused an array without its data")
        shape, dtype, fortran, raw = st[-4:]
        shape = _checked_shape(shape)
        if not isinstance(dtype, _DtypeStub):
            raise _Refused("refused an array whose type is not a numpy dtype")
        dtype = dtype.resolve()
        if isinstance(raw, str):  # Python 2 str, read as latin1
            raw = raw.encode("latin1")
        if not isinstance(raw, bytes):
            raise _Refused(f"refused an array whose data is a {type(raw).__name__}, not raw bytes (an object array)")
        n = math.prod(shape)
        if len(raw) != n * dtype.itemsize:
            raise _Refused(f"refused an array of shape {shape} and type {dtype} with {len(raw)} bytes of data "
                           f"instead of {n * dtype.itemsize}")
        return np.frombuffer(raw, dtype).reshape(shape, order="F" if fortran else "C").copy()


class _ScalarStub(_Stub):
    """Stand-in for ``numpy.core.multiarray.scalar(dtype, raw)``; see :meth:`resolve`."""

    what = "numpy scalar"

    def resolve(self):
        """The numpy scalar, only for a plain number type of ALLOWED_DTYPES and exactly its byte count."""
        if len(self.args) != 2 or not isinstance(self.args[0], _DtypeStub):
            raise _Refused("refused a numpy scalar without a dtype and its bytes")
        dtype, raw = self.args[0].resolve(), self.args[1]
        if isinstance(raw, str):
            raw = raw.encode("latin1")
        if not isinstance(raw, bytes) or len(raw) != dtype.itemsize:
            raise _Refused(f"refused a {dtype} scalar whose data is not {dtype.itemsize} raw bytes")
        return np.frombuffer(raw, dtype)[0]


class _SetStub(_Stub):
    """Stand-in for ``set`` / ``frozenset`` (chumpy's bookkeeping); the items are never hashed."""

    what = "set"


class _Marker:
    """A global that may only appear as an argument (``numpy.ndarray`` for ``_reconstruct``, ``object``)."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args, **kwargs):
        raise _Refused(f"refused to call {self.name} directly (only numpy's own array pickling is read)")


_NDARRAY = _Marker("numpy.ndarray")
_OBJECT = _Marker("object")


def _reconstruct(subtype, shape=None, dtype=None):
    """Stand-in for ``numpy.core.multiarray._reconstruct``: an empty array record, filled by BUILD."""
    if subtype is not _NDARRAY:
        raise _Refused("refused to rebuild an array of a type other than numpy.ndarray")
    return _ArrayStub()


def _reconstructor(cls, base=None, state=None):
    """Stand-in for ``copy_reg._reconstructor``, limited to the stand-in classes."""
    if not (isinstance(cls, type) and issubclass(cls, _Inert)):
        raise _Refused(f"refused to reconstruct {cls!r}")
    return cls()


def _encode(obj, encoding="latin1", errors="strict"):
    """Stand-in for ``_codecs.encode`` as Python 3 pickles of bytes use it: ``str -> latin1 bytes`` only."""
    if not isinstance(obj, str) or str(encoding).lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1"):
        raise _Refused("refused a text encoding other than latin1")
    return obj.encode("latin1")


def _bytes(*args):
    """Stand-in for ``bytes`` as Python 3 pickles of empty bytes use it: ``bytes()`` only (``bytes(n)`` allocates)."""
    if args:
        raise _Refused("refused a bytes() call with arguments")
    return b""


def _checked_shape(shape) -> tuple[int, ...]:
    """A shape as a tuple of non-negative ints within MAX_ARRAY_ELEMENTS, or _Refused."""
    if not isinstance(shape, (tuple, list)) or len(shape) > 4 or not all(type(d) is int and d >= 0 for d in shape):
        raise _Refused(f"refused an array shape that is not up to 4 non-negative integers: {shape!r}"[:200])
    if math.prod(shape) > MAX_ARRAY_ELEMENTS:
        raise _Refused(f"refused an array of shape {tuple(shape)}, more than the {MAX_ARRAY_ELEMENTS} elements a MANO-format "
                       "model needs")
    return tuple(shape)


def _to_array(obj, depth: int = 0) -> np.ndarray:
    """The array behind a pickled value: an ndarray record, or chumpy / scipy.sparse holding one."""
    if depth > 4:
        raise _Refused("refused arrays nested too deeply")
    if isinstance(obj, _ArrayStub):
        return obj.resolve()
    if isinstance(obj, _Inert):
        return obj.to_numpy(depth)
    raise _Refused(f"refused a {getattr(obj, 'what', type(obj).__name__)} where an array was expected")


def _compressed_to_dense(state: dict, by_column: bool) -> np.ndarray:
    """Dense array of a pickled scipy.sparse CSC (``by_column``) or CSR matrix's state, checked before allocating."""
    try:
        data, indices, indptr = (_to_array(state[k], 1) for k in ("data", "indices", "indptr"))
        shape = state.get("_shape", state.get("shape"))
    except KeyError as exc:
        raise _Refused(f"refused a sparse matrix without {exc}") from None
    shape = _checked_shape(shape)
    if len(shape) != 2 or data.ndim != 1 or indices.ndim != 1 or indptr.ndim != 1:
        raise _Refused("refused a sparse matrix that is not 2-D")
    major, minor = (shape[1], shape[0]) if by_column else shape
    if (indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu" or len(indptr) != major + 1
            or len(indices) != len(data) or (len(indptr) and (indptr[0] != 0 or indptr[-1] != len(data)))
            or np.any(np.diff(indptr.astype(np.int64)) < 0)
            or (len(indices) and (indices.min() < 0 or indices.max() >= minor))):
        raise _Refused(f"refused an inconsistent sparse matrix of shape {shape}")
    dense = np.zeros(shape, dtype=np.float64 if data.dtype.kind == "b" else data.dtype)
    majors = np.repeat(np.arange(major), np.diff(indptr.astype(np.int64)))
    if by_column:
        dense[indices, majors] = data
    else:
        dense[majors, indices] = data
    return dense


# --- the unpickler --------------------------------------------------------------------------------
_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")

#: Python 2 (``__builtin__``) and 3 (``builtins``) names a MANO pickle uses, and their stand-ins.
_BUILTINS = {"object": _OBJECT, "set": _SetStub, "frozenset": _SetStub, "bytes": _bytes}

#: (module, name) -> stand-in: the only globals a MANO pickle may name (plus chumpy / scipy.sparse).
_GLOBALS = {
    **{(m, "_reconstruct"): _reconstruct for m in _NUMPY_MODULES},
    **{(m, "scalar"): _ScalarStub for m in _NUMPY_MODULES},
    **{(m, "_reconstructor"): _reconstructor for m in ("copy_reg", "copyreg")},
    **{(m, name): f for m in ("__builtin__", "builtins") for name, f in _BUILTINS.items()},
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DtypeStub,
    ("_codecs", "encode"): _encode,
}

_Base = pickle._Unpickler  # the pure-Python unpickler: its opcodes can be narrowed below


class RestrictedUnpickler(_Base):
    """Unpickler for MANO files: it creates only inert stand-ins (see the module docstring), nothing else.

    Besides refusing every global but a handful, it narrows three opcodes of the pure-Python
    unpickler: dictionary keys must be strings or numbers (a crafted key cannot cost exponential
    time to hash), BUILD applies state only to stand-ins, and NEWOBJ creates only stand-ins.
    """

    dispatch = dict(_Base.dispatch)

    def find_class(self, module: str, name: str):
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        if module == "chumpy" or module.startswith("chumpy."):
            return _Chumpy
        if module == "scipy.sparse" or module.startswith("scipy.sparse."):
            if "csc" in name:
                return _Csc
            if "csr" in name:
                return _Csr
        raise RefusedGlobal(
            f"refused to load global '{module}.{name}' (a MANO file holds only numpy, chumpy and scipy.sparse data)")

    @staticmethod
    def _check_keys(keys) -> None:
        for k in keys:
            if type(k) not in (str, bytes, int):
                raise _Refused(f"refused a dictionary key of type {type(k).__name__}")

    def load_setitem(self):
        self._check_keys(self.stack[-2:-1])
        _Base.load_setitem(self)
    dispatch[pickle.SETITEM[0]] = load_setitem

    def load_setitems(self):
        self._check_keys(self.stack[0::2])  # the items after the mark: key, value, key, value ...
        _Base.load_setitems(self)
    dispatch[pickle.SETITEMS[0]] = load_setitems

    def load_dict(self):
        self._check_keys(self.stack[0::2])
        _Base.load_dict(self)
    dispatch[pickle.DICT[0]] = load_dict

    def load_empty_set(self):
        self.append(_SetStub())
    dispatch[pickle.EMPTY_SET[0]] = load_empty_set

    def load_frozenset(self):
        self.append(_SetStub(self.pop_mark()))
    dispatch[pickle.FROZENSET[0]] = load_frozenset

    def load_additems(self):
        items = self.pop_mark()
        if not isinstance(self.stack[-1], _SetStub):
            raise _Refused("refused to add items to something that is not a set")
        self.stack[-1].args += tuple(items)
    dispatch[pickle.ADDITEMS[0]] = load_additems

    def load_build(self):
        if not isinstance(self.stack[-2], _Stub):
            raise _Refused(f"refused to set the state of a {type(self.stack[-2]).__name__}")
        _Base.load_build(self)
    dispatch[pickle.BUILD[0]] = load_build

    def _new(self, cls, args):
        if not (isinstance(cls, type) and issubclass(cls, _Stub)):
            raise _Refused(f"refused to create a {getattr(cls, '__name__', type(cls).__name__)}")
        return cls(*args)

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, args))
    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, args))
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex


def restricted_load(data: bytes):
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (latin1 for Python 2 pickles).

    The result holds stand-ins, not arrays: read arrays from it with :func:`pickled_array`.
    """
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def pickled_array(obj) -> np.ndarray:
    """The checked numpy array behind a value of :func:`restricted_load` (ndarray, chumpy or sparse)."""
    return _to_array(obj)


#: Most objects :func:`restricted_load_plain` converts (a HO3D meta pickle holds a few dozen).
MAX_PLAIN_OBJECTS = 100_000


def restricted_load_plain(data: bytes):
    """Unpickle ``data`` (:class:`RestrictedUnpickler`) into plain values: dicts, lists, tuples, str, numbers,
    numpy arrays and scalars (checked as in MANO files). For annotation pickles such as HO3D's meta files.

    Raises ModelFileError's cause, ``_Refused`` (a DaHyF user error is the caller's to raise) for
    chumpy / sparse / set stand-ins and for more than MAX_PLAIN_OBJECTS objects.
    """
    done: dict[int, object] = {}

    def plain(obj, depth: int):
        if len(done) > MAX_PLAIN_OBJECTS or depth > 64:
            raise _Refused("refused a pickle with too many or too deeply nested objects")
        if obj is None or isinstance(obj, (str, bytes, int, float, bool)):
            return obj
        key = id(obj)
        if key in done:           # shared references are converted once (no exponential blow-up)
            return done[key]
        if isinstance(obj, _ArrayStub):
            out = obj.resolve()
        elif isinstance(obj, _ScalarStub):
            out = obj.resolve()
        elif isinstance(obj, dict):
            out = {k: plain(v, depth + 1) for k, v in obj.items()}
        elif isinstance(obj, list):
            out = [plain(v, depth + 1) for v in obj]
        elif isinstance(obj, tuple):
            out = tuple(plain(v, depth + 1) for v in obj)
        else:
            raise _Refused(f"refused a {getattr(obj, 'what', type(obj).__name__)} where plain data was expected")
        done[key] = out
        return out

    return plain(restricted_load(data), 0)
