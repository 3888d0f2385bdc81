"""The on-disk catalog: HEALPix-sorted, memory-mapped column files plus a pixel -> row-range index.

A catalog is a directory (schemas/xmatch.md describes the format):

    manifest.json       name, epoch, rows, columns, source, index order, notes
    id.npy              int64    source id
    ra.npy, dec.npy     float64  degrees (ICRS) at `epoch`
    mag.npy             float32  magnitude in the manifest's band; NaN when unknown
    pmra.npy, pmdec.npy float32  mas/yr (pmra includes cos dec); only when the catalog has real ones
    <extra>.npy         columns the importer was asked to carry
    index.npy           int64 [12 * 4**K + 1]: rows of pixel p (order K) are index[p]:index[p+1]

Rows are sorted by their nested pixel at order 29, so every pixel of every order <= K is one
contiguous row range: pixel p at order q < K spans index[p << 2(K-q)] : index[(p+1) << 2(K-q)].
A coarse partition is therefore a contiguous byte span of each column file, and a memory map
makes only the touched spans resident.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from ..errors import CatalogError
from .healpix import MAX_ORDER, ang2pix_nest_array, n_pixels
from .match import MAS_PER_YEAR, cone_search, safe_radius_table

FORMAT = "alertfeat-catalog"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_INDEX_ORDER = 12  # a dense int64 index of 12 * 4**12 + 1 entries is 1.6 GB (memory-mapped)
FULL_CHECK_ENTRIES = 1 << 23  # indexes up to 64 MB are checked entry by entry at load
NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")  # also a valid Avro field name
COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

CORE_COLUMNS: dict[str, tuple[str, str | None, str]] = {
    "id": ("<i8", None, "source identifier"),
    "ra": ("<f8", "deg", "right ascension (ICRS) at the catalog epoch"),
    "dec": ("<f8", "deg", "declination (ICRS) at the catalog epoch"),
    "mag": ("<f4", "mag", "magnitude; NaN when unknown"),
}
PM_COLUMNS: dict[str, tuple[str, str | None, str]] = {
    "pmra": ("<f4", "mas/yr", "proper motion in right ascension, times cos(dec)"),
    "pmdec": ("<f4", "mas/yr", "proper motion in declination"),
}
INDEX_FILE = "index.npy"


def catalogs_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "catalogs"


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise CatalogError(f"catalog name {name!r} must match {NAME.pattern} (it becomes an Avro field name)")
    return name


def choose_index_order(rows: int) -> int:
    """The order at which the catalog has about one row per pixel, at most MAX_INDEX_ORDER."""
    if rows <= 12:
        return 0
    return min(MAX_INDEX_ORDER, math.ceil(math.log(rows / 12, 4)))


def julian_year(mjd: np.ndarray | float) -> np.ndarray | float:
    """Julian epoch of an MJD (J2000.0 = MJD 51544.5)."""
    return 2000.0 + (np.asarray(mjd, np.float64) - 51544.5) / 365.25


@dataclass
class Catalog:
    """A loaded catalog: manifest fields and (memory-mapped, read-only) columns."""

    name: str
    epoch: float  # Julian year of the positions
    index_order: int
    id: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray
    pmra: np.ndarray  # empty when the catalog has no proper motions
    pmdec: np.ndarray
    index: np.ndarray
    pm_max_mas_yr: float = 0.0
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def rows(self) -> int:
        return len(self.id)

    @property
    def has_pm(self) -> bool:
        return len(self.pmra) > 0

    def column(self, name: str) -> np.ndarray:
        """Any stored column (core or carried), memory-mapped."""
        if name in ("id", "ra", "dec", "mag", "pmra", "pmdec"):
            return getattr(self, name)
        if self.path is None or name not in {c["name"] for c in self.manifest.get("columns", [])}:
            raise CatalogError(f"catalog {self.name} has no column {name!r}")
        return _load_array(self.path / f"{name}.npy", None, self.rows, self.name)

    def search(self, ra: np.ndarray, dec: np.ndarray, dt: np.ndarray, radius: float, bright_mag: float,
               bright_radius: float, count: np.ndarray, rows: np.ndarray, seps: np.ndarray,
               bright: np.ndarray, alert_order: np.ndarray | None = None) -> None:
        """Match a batch (radii in radians, dt in years from the catalog epoch): see match.cone_search.

        alert_order is for partitioned catalogs; the whole-sky index needs no locality help."""
        cone_search(ra, dec, dt, self.ra, self.dec, self.pmra, self.pmdec, self.mag, self.index, self.index_order,
                    safe_radius_table(self.index_order), self.pm_max_mas_yr * MAS_PER_YEAR, radius, bright_mag,
                    bright_radius, count, rows, seps, bright)

    @classmethod
    def from_arrays(cls, name: str, ra, dec, *, ids=None, mag=None, pmra=None, pmdec=None,
                    epoch: float = 2000.0, index_order: int | None = None) -> Catalog:
        """An in-memory catalog (tests, data checks); same sorting and index as on disk."""
        cols = prepare_columns(ra, dec, ids=ids, mag=mag, pmra=pmra, pmdec=pmdec)
        order = choose_index_order(len(cols["id"])) if index_order is None else index_order
        keys = cols.pop("_key")
        index = build_index(keys, order)
        arrays = {k: _readonly(v) for k, v in cols.items()}
        pm_max = float(np.max(np.hypot(cols["pmra"], cols["pmdec"]), initial=0.0)) if "pmra" in cols else 0.0
        empty = _readonly(np.zeros(0, np.float32))
        return cls(name=check_name(name), epoch=float(epoch), index_order=order, id=arrays["id"], ra=arrays["ra"],
                   dec=arrays["dec"], mag=arrays["mag"], pmra=arrays.get("pmra", empty),
                   pmdec=arrays.get("pmdec", empty), index=_readonly(index), pm_max_mas_yr=pm_max)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def prepare_columns(ra, dec, *, ids=None, mag=None, pmra=None, pmdec=None,
                    extra: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Validate, normalise and sort columns by nested pixel; adds '_key' (order-29 pixels)."""
    ra = np.asarray(ra, np.float64)
    dec = np.asarray(dec, np.float64)
    n = len(ra)
    if len(dec) != n:
        raise CatalogError("ra and dec differ in length")
    if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec))):
        raise CatalogError("ra/dec must be finite in every row (drop rows without a position first)")
    if n and (dec.min() < -90.0 or dec.max() > 90.0):
        raise CatalogError(f"dec outside [-90, 90] degrees (min {dec.min()}, max {dec.max()}): wrong unit?")
    ra = np.mod(ra, 360.0)
    ra[ra >= 360.0] = 0.0  # np.mod can round -tiny up to 360.0
    cols = {
        "id": np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, np.int64),
        "ra": ra,
        "dec": dec,
        "mag": np.full(n, np.nan, np.float32) if mag is None else np.asarray(mag, np.float32),
    }
    if (pmra is None) != (pmdec is None):
        raise CatalogError("give both pmra and pmdec, or neither")
    if pmra is not None:
        # Unknown proper motion (NaN) means "do not move this star".
        cols["pmra"] = np.nan_to_num(np.asarray(pmra, np.float32), nan=0.0)
        cols["pmdec"] = np.nan_to_num(np.asarray(pmdec, np.float32), nan=0.0)
        if not (np.all(np.isfinite(cols["pmra"])) and np.all(np.isfinite(cols["pmdec"]))):
            raise CatalogError("proper motions must be finite or NaN")
    for name, values in (extra or {}).items():
        cols[name] = np.asarray(values)
    for name, values in cols.items():
        if len(values) != n:
            raise CatalogError(f"column {name} has {len(values)} rows, ra has {n}")
    key = ang2pix_nest_array(MAX_ORDER, ra, dec)
    order = np.argsort(key, kind="stable")
    out = {name: np.ascontiguousarray(values[order]) for name, values in cols.items()}
    out["_key"] = key[order]
    return out


def build_index(sorted_keys: np.ndarray, order: int) -> np.ndarray:
    pix = sorted_keys >> (2 * (MAX_ORDER - order))
    return np.searchsorted(pix, np.arange(n_pixels(order) + 1, dtype=np.int64), side="left").astype(np.int64)


# --------------------------------------------------------------------------- writing


class CatalogWriter:
    """Writes a catalog directory from chunks that arrive in nested-pixel order.

    The rows of all chunks together must be sorted (each chunk from prepare_columns, and the
    chunks in pixel order, e.g. HATS partitions), so a catalog larger than memory can stream in.
    The directory appears atomically at finish().
    """

    def __init__(self, root: str | Path, name: str, rows: int, *, index_order: int | None = None,
                 has_pm: bool = False, extra: dict[str, np.dtype] | None = None):
        self.name = check_name(name)
        self.root = Path(root)
        self.target = self.root / name
        self.rows = rows
        self.order = choose_index_order(rows) if index_order is None else index_order
        if not 0 <= self.order <= MAX_INDEX_ORDER:
            raise CatalogError(f"index order {self.order} is outside 0..{MAX_INDEX_ORDER}")
        self.specs = dict(CORE_COLUMNS)
        if has_pm:
            self.specs.update(PM_COLUMNS)
        for col, dtype in (extra or {}).items():
            if not COLUMN.match(col) or col in self.specs or col == "index":
                raise CatalogError(f"cannot carry a column named {col!r}")
            dtype = np.dtype(dtype)
            if dtype.kind not in "biuf":
                raise CatalogError(f"column {col!r} has type {dtype}; only numeric and boolean columns can be carried")
            self.specs[col] = (dtype.newbyteorder("<").str, None, "carried from the source")
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp = self.root / f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.tmp.mkdir()
        self.arrays = {col: _open_column(self.tmp / f"{col}.npy", spec[0], rows) for col, spec in self.specs.items()}
        self.counts = np.zeros(n_pixels(self.order), np.int64)
        self.written = 0
        self.last_key = -1
        self.pm_max = 0.0

    def append(self, cols: dict[str, np.ndarray]) -> None:
        keys = cols["_key"]
        n = len(keys)
        if n == 0:
            return
        if self.written + n > self.rows:
            raise CatalogError(f"more rows than the {self.rows} announced")
        if keys[0] < self.last_key or np.any(np.diff(keys) < 0):
            raise CatalogError("rows arrive out of nested-pixel order")
        for col in self.specs:
            if col not in cols:
                raise CatalogError(f"chunk lacks column {col}")
            if n:
                self.arrays[col][self.written:self.written + n] = cols[col]
        pix, counts = np.unique(keys >> (2 * (MAX_ORDER - self.order)), return_counts=True)
        self.counts[pix] += counts
        if "pmra" in self.specs:
            self.pm_max = max(self.pm_max, float(np.max(np.hypot(cols["pmra"], cols["pmdec"]), initial=0.0)))
        self.written += n
        self.last_key = int(keys[-1])

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def finish(self, *, epoch: float, source: dict[str, Any], mag_band: str, notes: list[str] | None = None,
               checks: dict[str, Any] | None = None, docs: dict[str, str] | None = None, replace: bool = True) -> Path:
        if self.written != self.rows:
            self.abort()
            raise CatalogError(f"{self.written} rows written, {self.rows} announced")
        for arr in self.arrays.values():
            if isinstance(arr, np.memmap):
                arr.flush()
        self.arrays.clear()
        index = np.zeros(len(self.counts) + 1, np.int64)
        np.cumsum(self.counts, out=index[1:])
        np.save(self.tmp / INDEX_FILE, index)
        docs = docs or {}
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "epoch": float(epoch),
            "rows": self.rows,
            "index_order": self.order,
            "proper_motion": "pmra" in self.specs,
            "pm_max_mas_yr": self.pm_max,
            "mag_band": mag_band,
            "columns": [
                {"name": col, "dtype": spec[0], "unit": spec[1], "doc": docs.get(col, spec[2])}
                for col, spec in self.specs.items()
            ],
            "source": source,
            "checks": checks or {},
            "notes": notes or [],
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (self.tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        return _publish(self.tmp, self.target, replace)


def _open_column(path: Path, dtype: str, rows: int) -> np.ndarray:
    if rows == 0:
        np.save(path, np.zeros(0, dtype))
        return np.zeros(0, dtype)
    return np.lib.format.open_memmap(path, mode="w+", dtype=np.dtype(dtype), shape=(rows,))


def _publish(tmp: Path, target: Path, replace: bool = True) -> Path:
    """Move a finished catalog into place; an existing one is replaced, or kept if not `replace`."""
    old = None
    if target.exists() and not replace:  # someone else imported it meanwhile: theirs stays
        shutil.rmtree(tmp, ignore_errors=True)
        return target
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:6]}")
        target.rename(old)
    try:
        tmp.rename(target)
    except OSError:
        if old is not None:
            old.rename(target)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def write_catalog(root: str | Path, name: str, cols: dict[str, np.ndarray], **finish_kw: Any) -> Path:
    """Write columns already passed through prepare_columns (sorted, with '_key')."""
    has_pm = "pmra" in cols
    extra = {k: v.dtype for k, v in cols.items() if k not in CORE_COLUMNS and k not in PM_COLUMNS and k != "_key"}
    writer = CatalogWriter(root, name, len(cols["_key"]), has_pm=has_pm, extra=extra,
                           index_order=finish_kw.pop("index_order", None))
    try:
        writer.append(cols)
    except BaseException:
        writer.abort()
        raise
    return writer.finish(**finish_kw)


# --------------------------------------------------------------------------- loading


def read_manifest(path: Path) -> dict[str, Any]:
    file = path / MANIFEST
    if not file.is_file():
        raise CatalogError(f"catalog {path}: no {MANIFEST} (not imported? see `alertfeat catalog import --help`)")
    try:
        manifest = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogError(f"catalog {path}: {MANIFEST} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CatalogError(f"catalog {path}: {MANIFEST} is not an {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CatalogError(f"catalog {path}: format version {manifest.get('format_version')} is not "
                           f"{FORMAT_VERSION}; re-import it")
    for key, kind in (("name", str), ("epoch", (int, float)), ("rows", int), ("index_order", int),
                      ("columns", list), ("proper_motion", bool), ("pm_max_mas_yr", (int, float))):
        if not isinstance(manifest.get(key), kind) or isinstance(manifest.get(key), bool) and kind is not bool:
            raise CatalogError(f"catalog {path}: manifest field {key!r} is missing or has the wrong type")
    if manifest["rows"] < 0 or not 0 <= manifest["index_order"] <= MAX_INDEX_ORDER:
        raise CatalogError(f"catalog {path}: manifest rows/index_order out of range")
    return manifest


def load_catalog(path: str | Path) -> Catalog:
    """Open a catalog directory (memory-mapped); CatalogError says what is wrong with it."""
    path = Path(path)
    manifest = read_manifest(path)
    rows, order, name = manifest["rows"], manifest["index_order"], manifest["name"]
    declared = {c.get("name"): c.get("dtype") for c in manifest["columns"] if isinstance(c, dict)}
    needed = dict(CORE_COLUMNS)
    if manifest["proper_motion"]:
        needed.update(PM_COLUMNS)
    arrays = {}
    for col, spec in needed.items():
        if declared.get(col) != spec[0]:
            raise CatalogError(f"catalog {path}: manifest declares column {col!r} as {declared.get(col)}, "
                               f"expected {spec[0]}")
        arrays[col] = _load_array(path / f"{col}.npy", spec[0], rows, name)
    index = _load_array(path / INDEX_FILE, "<i8", n_pixels(order) + 1, name)
    # A large index is checked on a sample, so that opening a catalog does not page all of it in.
    sample = index if len(index) <= FULL_CHECK_ENTRIES else index[::FULL_CHECK_ENTRIES // 128]
    if index[0] != 0 or index[-1] != rows or not _non_decreasing(sample):
        raise CatalogError(f"catalog {path}: index.npy is not a valid row-range index for {rows} rows")
    empty = _readonly(np.zeros(0, np.float32))
    return Catalog(name=name, epoch=float(manifest["epoch"]), index_order=order, id=arrays["id"], ra=arrays["ra"],
                   dec=arrays["dec"], mag=arrays["mag"], pmra=arrays.get("pmra", empty),
                   pmdec=arrays.get("pmdec", empty), index=index, pm_max_mas_yr=float(manifest["pm_max_mas_yr"]),
                   manifest=manifest, path=path)


def _load_array(file: Path, dtype: str | None, rows: int, catalog: str) -> np.ndarray:
    if not file.is_file():
        raise CatalogError(f"catalog {catalog}: {file.name} is missing ({file})")
    try:
        with open(file, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _fortran, file_dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _fortran, file_dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f".npy version {version}")
            data_offset = fh.tell()
        size = file.stat().st_size
    except (ValueError, OSError) as exc:
        raise CatalogError(f"catalog {catalog}: {file.name} is not a .npy file ({exc})") from None
    if dtype is not None and file_dtype != np.dtype(dtype):
        raise CatalogError(f"catalog {catalog}: {file.name} holds {file_dtype}, expected {np.dtype(dtype)}")
    if shape != (rows,):
        raise CatalogError(f"catalog {catalog}: {file.name} has shape {shape}, expected ({rows},)")
    if size != data_offset + rows * file_dtype.itemsize:
        raise CatalogError(f"catalog {catalog}: {file.name} is {size} bytes, expected "
                           f"{data_offset + rows * file_dtype.itemsize} (truncated or padded)")
    if rows == 0:
        return _readonly(np.zeros(0, file_dtype))
    # A plain ndarray view of the read-only map: numba sees one array type for every catalog.
    return np.load(file, mmap_mode="r").view(np.ndarray)


@njit(cache=True, nogil=True)
def _non_decreasing(a):
    for i in range(1, len(a)):
        if a[i] < a[i - 1]:
            return False
    return True


def footprint(rows: int, *, proper_motion: bool = False, extra_bytes_per_row: int = 0, index_order: int | None = None,
              partition_order: int = 5) -> dict[str, float]:
    """Disk and memory figures of a catalog in this format (schemas/xmatch.md quotes them for 1e9 rows).

    A partition is the row range of one pixel at `partition_order`; with a memory map, what is
    resident is the touched partitions' column bytes plus their slice of the index.
    """
    order = choose_index_order(rows) if index_order is None else index_order
    per_row = sum(np.dtype(spec[0]).itemsize for spec in CORE_COLUMNS.values()) + extra_bytes_per_row
    if proper_motion:
        per_row += sum(np.dtype(spec[0]).itemsize for spec in PM_COLUMNS.values())
    partitions = n_pixels(partition_order)
    index_bytes = (n_pixels(order) + 1) * 8
    return {
        "rows": rows,
        "bytes_per_row": per_row,
        "column_bytes": rows * per_row,
        "index_order": order,
        "index_bytes": index_bytes,
        "total_bytes": rows * per_row + index_bytes,
        "mean_rows_per_index_pixel": rows / n_pixels(order),
        "partition_order": partition_order,
        "partitions": partitions,
        "partition_area_deg2": 4 * math.pi * (180 / math.pi) ** 2 / partitions,
        "mean_partition_bytes": rows * per_row / partitions,
        "index_bytes_per_partition": index_bytes / partitions,
    }
