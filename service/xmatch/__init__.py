"""Cross-match alerts against local, HEALPix-sorted, memory-mapped catalogs (DESIGN.md section 5).

    catalogs = CatalogSet.from_settings(settings)   # imports gaia + hipparcos on first use
    result = catalogs.match(ra_deg, dec_deg, mjd)   # one numba call per catalog per batch
    xmatch_record_bytes(result, ...), summary_bytes(result), appended_fields(catalogs.names)
"""

from .catalogs import DEFAULT_CATALOGS, CatalogSet, XmatchResult, ensure_default_catalogs
from .output import appended_fields, summary_bytes, xmatch_json, xmatch_record_bytes, xmatch_schema
from .store import Catalog, catalogs_dir, load_catalog

__all__ = [
    "DEFAULT_CATALOGS", "Catalog", "CatalogSet", "XmatchResult", "appended_fields", "catalogs_dir",
    "ensure_default_catalogs", "load_catalog", "summary_bytes", "xmatch_json", "xmatch_record_bytes",
    "xmatch_schema",
]
