"""Batch features over HATS catalogs (LSDB/Dask). Never imported by the stream service."""
