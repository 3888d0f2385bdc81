"""A HATS catalog matched in place: partitions are paged into a bounded in-memory cache on first touch.

Nothing is imported ahead of time. Before each batch, the partitions that any alert's cone reaches
(its pixel's neighbourhood, so matches across a partition boundary are found) are read from their
Parquet files, if not cached yet, into one arena of columns per catalog. The arena holds at most
`cache_mb`; the least recently used partitions that the batch does not need are evicted, and the
rest moved down (compacted) so that the arena stays one set of contiguous arrays for the kernel.
A batch that needs more than the cache gets it (the arena grows, with a warning): correctness first.

Why convert to an arena rather than read Parquet at match time: reading a partition costs
milliseconds; matching 10,000 alerts against it costs microseconds. A warm visit must not touch
Parquet at all, and the kernel needs flat arrays, so the decoded columns are what is cached.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CatalogError
from .healpix import MAX_ORDER, ang2pix_nest_array
from .match import MAS_PER_YEAR, cone_search_partitioned, safe_radius_table
from .parquet import _pyarrow, hats_catalog, hats_partitions

log = logging.getLogger(__name__)

QUERY_ORDERS = 20  # finest query order: 0.2 arcsec pixels, far below any match radius
# The fastest proper motion of any star (Barnard's star, 10.4 arcsec/yr), rounded up.
PM_MAX_MAS_YR = 10_500.0
# Stars faster than this (|pmra| + |pmdec|, mas/yr; ~0.1% of Gaia) are looked up by declination,
# so that the pixel search for all others reaches 1.1 arcsec per decade instead of 115.
PM_SLOW_MAS_YR = 100.0
ORDER_OF_ALERTS = 12  # alerts are visited sorted by their pixel at this order (memory locality)


def pixel_order(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Alert indices sorted by nested pixel, so that consecutive alerts read neighbouring rows."""
    ok = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)
    keys = ang2pix_nest_array(ORDER_OF_ALERTS, np.where(ok, ra, 0.0), np.where(ok, dec, 0.0))
    return np.argsort(keys, kind="stable")


@dataclass
class HatsColumns:
    """Which HATS columns are the id, magnitude and proper motions, and which others to carry."""

    id: str
    mag: str | None = None
    pmra: str | None = None
    pmdec: str | None = None
    carry: tuple[str, ...] = ()


@dataclass
class CacheStats:
    hits: int = 0  # touched partitions already in the cache
    misses: int = 0  # touched partitions read from Parquet
    evictions: int = 0
    rows_read: int = 0
    read_seconds: float = 0.0
    grown: int = 0  # batches that needed more than the cache
    peak_bytes: int = 0

    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else float("nan")


@dataclass
class _Arena:
    """Columns of the cached partitions, back to back; capacity in rows."""

    columns: dict[str, np.ndarray]
    used: int = 0

    @property
    def capacity(self) -> int:
        return len(self.columns["key"])

    def grow(self, rows: int) -> None:
        for name, col in self.columns.items():
            bigger = np.empty(rows, col.dtype)
            bigger[:self.used] = col[:self.used]
            self.columns[name] = bigger


@dataclass
class HatsCatalog:
    """A HATS catalog opened in place; `search` pages in what a batch needs, then matches."""

    name: str
    path: Path
    cols: HatsColumns
    epoch: float
    cache_bytes: int
    pm_max_mas_yr: float
    part_lo: np.ndarray  # int64 [p]: first order-29 key of each partition, sorted
    part_hi: np.ndarray  # int64 [p]: one past its last key
    files: list[list[Path]]
    ra_col: str
    dec_col: str
    key_col: str | None  # the order-29 pixel column, when the catalog has one
    slot_lo: np.ndarray = field(init=False)
    slot_hi: np.ndarray = field(init=False)
    stats: CacheStats = field(default_factory=CacheStats)

    def __post_init__(self):
        self.slot_lo = np.full(len(self.part_lo), -1, np.int64)
        self.slot_hi = np.full(len(self.part_lo), -1, np.int64)
        self._lru: OrderedDict[int, None] = OrderedDict()
        self._safe = safe_radius_table(QUERY_ORDERS)
        dtypes = {"key": np.int64, "id": np.int64, "ra": np.float64, "dec": np.float64, "mag": np.float32}
        if self.has_pm:
            dtypes.update(pmra=np.float32, pmdec=np.float32)
        self._dtypes = {k: np.dtype(v) for k, v in dtypes.items()}
        self.row_bytes = sum(d.itemsize for d in self._dtypes.values())
        self._arena = _Arena({k: np.empty(0, d) for k, d in self._dtypes.items()})
        self._carried: dict[str, np.ndarray] = {}
        self._fast_rows = np.zeros(0, np.int64)  # arena rows of stars faster than PM_SLOW_MAS_YR, by dec
        self._fast_dec = np.zeros(0, np.float64)

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, name: str, path: str | Path, cols: HatsColumns, *, epoch: float = 2016.0, cache_mb: float = 150.0,
             pm_max_mas_yr: float | None = None) -> HatsCatalog:
        """Open a HATS catalog (or collection): reads its properties and partition list only."""
        catalog, props = hats_catalog(Path(path))
        if props.get("dataproduct_type", "object") not in ("object", "source"):
            raise CatalogError(f"{catalog}: a HATS {props['dataproduct_type']} catalog has no sources to match")
        if (cols.pmra is None) != (cols.pmdec is None):
            raise CatalogError(f"catalog {name}: give both pmra and pmdec columns, or neither")
        parts = hats_partitions(catalog, props.get("hats_npix_suffix", ".parquet"))
        if not parts:
            raise CatalogError(f"{catalog}: no Norder=/Dir=/Npix= partitions")
        lo = np.array([pix << 2 * (MAX_ORDER - order) for order, pix, _ in parts], np.int64)
        hi = np.array([(pix + 1) << 2 * (MAX_ORDER - order) for order, pix, _ in parts], np.int64)
        if np.any(lo[1:] < hi[:-1]):
            raise CatalogError(f"{catalog}: partitions overlap")
        pa, _, pq = _pyarrow()
        first = parts[0][2][0]
        try:
            schema = pq.ParquetFile(first).schema_arrow
        except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
            raise CatalogError(f"{first}: not readable as Parquet ({exc})") from None
        names = schema.names
        ra_col, dec_col = props.get("hats_col_ra", "ra"), props.get("hats_col_dec", "dec")
        key_col = props.get("hats_col_healpix", "_healpix_29")
        if key_col not in names or props.get("hats_col_healpix_order", "29") != "29":
            key_col = None
        wanted = [cols.id, ra_col, dec_col, cols.mag, cols.pmra, cols.pmdec, *cols.carry]
        missing = [c for c in wanted if c and c not in names]
        if missing:
            raise CatalogError(f"catalog {name} ({catalog}): no column(s) {', '.join(missing)}; "
                               f"it has {', '.join(names)}")
        # Checked now, so a wrong type fails at start rather than on the first batch that pages it in.
        numeric = lambda c: pa.types.is_floating(schema.field(c).type) or pa.types.is_integer(schema.field(c).type)  # noqa: E731
        wrong = [f"{c} ({schema.field(c).type})" for c in wanted[1:] if c and not numeric(c)]
        if not pa.types.is_integer(schema.field(cols.id).type):
            wrong.insert(0, f"{cols.id} ({schema.field(cols.id).type}, the id must be an integer)")
        if wrong:
            raise CatalogError(f"catalog {name} ({catalog}): non-numeric column(s) {', '.join(wrong)}")
        if cache_mb <= 0:
            raise CatalogError(f"catalog {name}: cache_mb must be positive")
        pm_max = PM_MAX_MAS_YR if pm_max_mas_yr is None else float(pm_max_mas_yr)
        return cls(name=name, path=catalog, cols=cols, epoch=float(epoch), cache_bytes=int(cache_mb * 2**20),
                   pm_max_mas_yr=pm_max if cols.pmra else 0.0, part_lo=lo, part_hi=hi,
                   files=[files for _, _, files in parts], ra_col=ra_col, dec_col=dec_col, key_col=key_col)

    # ------------------------------------------------------------------ what the matcher reads

    @property
    def has_pm(self) -> bool:
        return self.cols.pmra is not None

    @property
    def partitions(self) -> int:
        return len(self.part_lo)

    @property
    def cached_partitions(self) -> int:
        return len(self._lru)

    @property
    def cached_bytes(self) -> int:
        return self._arena.used * self.row_bytes + sum(a.nbytes for a in self._carried.values())

    @property
    def id(self) -> np.ndarray:
        return self._arena.columns["id"]

    @property
    def mag(self) -> np.ndarray:
        return self._arena.columns["mag"]

    def column(self, name: str) -> np.ndarray:
        """A carried column, by arena row (valid until the next search)."""
        if name in self._dtypes:
            return self._arena.columns[name]
        if name not in self.cols.carry:
            raise CatalogError(f"catalog {self.name} carries no column {name!r}")
        return self._carried.get(name, np.zeros(0))  # nothing paged in yet

    def search(self, ra: np.ndarray, dec: np.ndarray, dt: np.ndarray, radius: float, bright_mag: float,
               bright_radius: float, count: np.ndarray, rows: np.ndarray, seps: np.ndarray,
               bright: np.ndarray, alert_order: np.ndarray | None = None) -> None:
        """Match a batch (radii in radians, dt in years); rows are arena rows, valid until the next search.

        A warm batch is one kernel pass. When it reached partitions not in the cache, they are
        paged in and the batch is searched again.
        """
        touched = np.zeros(len(self.part_lo), np.bool_)
        order = pixel_order(ra, dec) if alert_order is None else alert_order
        args = (ra, dec, dt, order, radius, bright_mag, bright_radius, count, rows, seps, bright, touched)
        missing = self._kernel(*args)
        needed = np.flatnonzero(touched)
        new = [int(j) for j in needed if self.slot_lo[j] < 0]
        self.stats.hits += len(needed) - len(new)
        self.stats.misses += len(new)
        for j in needed:
            if self.slot_lo[j] >= 0:
                self._lru.move_to_end(int(j))
        if not missing:
            return
        self.page_in(new, set(needed.tolist()))
        if self._kernel(*args):
            raise AssertionError(f"catalog {self.name}: reached partitions are still not paged in")

    def _kernel(self, ra, dec, dt, order, radius, bright_mag, bright_radius, count, rows, seps, bright, touched):
        a = self._arena.columns
        empty = np.zeros(0, np.float32)
        return cone_search_partitioned(
            ra, dec, dt, order, self.has_pm, a["key"], a["ra"], a["dec"], a.get("pmra", empty), a.get("pmdec", empty), a["mag"],
            self.part_lo, self.part_hi, self.slot_lo, self.slot_hi, self._fast_rows, self._fast_dec, self._safe,
            self.pm_max_mas_yr * MAS_PER_YEAR, PM_SLOW_MAS_YR, radius, bright_mag, bright_radius, count, rows, seps,
            bright, touched)

    # ------------------------------------------------------------------ the cache

    def page_in(self, new: list[int], keep: set[int]) -> None:
        """Read partitions `new` into the arena, evicting old ones not in `keep` if the cache is full."""
        t0 = time.perf_counter()
        tables = [self._read(j) for j in new]
        self.stats.read_seconds += time.perf_counter() - t0
        incoming = sum(len(t["key"]) for t in tables)
        self.stats.rows_read += incoming
        self._make_room(incoming, keep)
        for j, table in zip(new, tables):
            self._place(j, table)
        self._index_fast()
        self.stats.peak_bytes = max(self.stats.peak_bytes, self.cached_bytes)

    def _read(self, j: int) -> dict[str, np.ndarray]:
        """One partition's columns, sorted by key."""
        _, _, pq = _pyarrow()
        c = self.cols
        src = {"id": c.id, "ra": self.ra_col, "dec": self.dec_col, "mag": c.mag, "pmra": c.pmra, "pmdec": c.pmdec}
        if self.key_col:
            src["key"] = self.key_col
        names = list(dict.fromkeys(v for v in [*src.values(), *c.carry] if v))
        try:
            table = pq.ParquetDataset(self.files[j]).read(columns=names) if len(self.files[j]) > 1 \
                else pq.read_table(self.files[j][0], columns=names)
        except Exception as exc:  # a damaged file must name itself
            raise CatalogError(f"catalog {self.name}: cannot read partition {self.files[j]} ({exc})") from None
        out = {}
        for name, dtype in self._dtypes.items():
            if name == "key" and not self.key_col:
                continue
            col = src[name]
            if col is None:  # no magnitude column
                out[name] = np.full(table.num_rows, np.nan, dtype)
                continue
            values = table.column(col).to_numpy(zero_copy_only=False)
            out[name] = np.nan_to_num(values.astype(dtype), nan=0.0) if name in ("pmra", "pmdec") \
                else values.astype(dtype, copy=False)
        if not self.key_col:
            out["key"] = ang2pix_nest_array(MAX_ORDER, out["ra"], out["dec"])
        for name in c.carry:
            out["carry:" + name] = table.column(name).to_numpy(zero_copy_only=False)
        keys = out["key"]
        bad = (keys < self.part_lo[j]) | (keys >= self.part_hi[j])
        if bad.any():
            raise CatalogError(f"catalog {self.name}: {int(bad.sum())} rows of {self.files[j][0]} lie outside "
                               f"their partition")
        if np.any(keys[1:] < keys[:-1]):
            order = np.argsort(keys, kind="stable")
            out = {k: v[order] for k, v in out.items()}
        return out

    def _index_fast(self) -> None:
        if not self.has_pm:
            return
        a, n = self._arena.columns, self._arena.used
        fast = np.flatnonzero(np.abs(a["pmra"][:n]) + np.abs(a["pmdec"][:n]) > PM_SLOW_MAS_YR)
        self._fast_rows = fast[np.argsort(a["dec"][fast], kind="stable")]
        self._fast_dec = a["dec"][self._fast_rows]

    def _make_room(self, incoming: int, keep: set[int]) -> None:
        """Evict least recently used partitions (not in `keep`) until `incoming` rows fit the cache."""
        arena = self._arena
        capacity = max(self.cache_bytes // self.row_bytes, 1)
        live = arena.used  # the arena is compact between batches
        if live + incoming > capacity:
            for j in list(self._lru):  # oldest first
                if live + incoming <= capacity:
                    break
                if j not in keep:
                    live -= int(self.slot_hi[j] - self.slot_lo[j])
                    self._evict(j)
            self._compact()
        need = arena.used + incoming
        if need > capacity:
            self.stats.grown += 1
            log.warning("catalog %s: a batch needs %.0f MB of partitions, more than its cache of %.0f MB",
                        self.name, need * self.row_bytes / 2**20, self.cache_bytes / 2**20)
        if need > arena.capacity:
            arena.grow(max(need, min(capacity, 2 * arena.capacity)))

    def _evict(self, j: int) -> None:
        del self._lru[j]
        self.slot_lo[j] = self.slot_hi[j] = -1
        self.stats.evictions += 1

    def _compact(self) -> None:
        """Move the live partitions down to the start of the arena, keeping their order."""
        dst = 0
        live = sorted(self._lru, key=lambda j: self.slot_lo[j])
        carried = {}
        for j in live:
            s, e = int(self.slot_lo[j]), int(self.slot_hi[j])
            if s != dst:
                for col in self._arena.columns.values():
                    col[dst:dst + e - s] = col[s:e]
            for name, col in self._carried.items():
                carried.setdefault(name, []).append(col[s:e])
            self.slot_lo[j], self.slot_hi[j] = dst, dst + e - s
            dst += e - s
        self._arena.used = dst
        self._carried = {name: np.concatenate(parts) for name, parts in carried.items()}

    def _place(self, j: int, table: dict[str, np.ndarray]) -> None:
        arena = self._arena
        n = len(table["key"])
        s = arena.used
        for name, col in arena.columns.items():
            col[s:s + n] = table[name]
        for name in self.cols.carry:
            values = table["carry:" + name]
            self._carried[name] = np.concatenate([self._carried[name], values]) if name in self._carried else values
        self.slot_lo[j], self.slot_hi[j] = s, s + n
        arena.used = s + n
        self._lru[j] = None
