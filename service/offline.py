"""`alertfeat features`: the pipeline over Avro files with no Kafka and no Redis."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

from .avro_files import framed_messages
from .features import feature_spec
from .output_json import EnrichedView, batch_views
from .pipeline import Pipeline


def offline_views(pipeline: Pipeline, paths: Iterable[str | Path], batch_size: int = 1000,
                  schema_id: int | None = None) -> Iterator[EnrichedView | tuple[str, str]]:
    """An EnrichedView per alert, or (reason, detail) for an alert that could not be decoded."""
    spec = feature_spec()
    messages = framed_messages(paths, schema_id)
    while batch := list(itertools.islice(messages, batch_size)):
        result = pipeline.process(batch)
        views = iter(batch_views(result, spec.names, spec.version))
        for i in range(len(batch)):
            if result.decoded.ok[i]:
                yield next(views)
            else:
                yield (result.decoded.error_reason[i], result.decoded.error_detail[i])
