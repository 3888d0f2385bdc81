"""One exception root for the whole package."""


class AlertfeatError(Exception):
    """Root of every error alertfeat raises on purpose."""


class ConfigError(AlertfeatError):
    """Settings are invalid; the message names the offending field."""


class PoisonMessage(AlertfeatError):
    """A message that can never be enriched. It goes to the dead-letter topic.

    `reason` is a short, stable code used in DLQ headers and metric labels.
    """

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class TransientError(AlertfeatError):
    """A dependency is briefly unavailable (e.g. the schema registry). The batch is retried,
    never dead-lettered: the input is fine."""


class DeliveryError(AlertfeatError):
    """Kafka did not confirm delivery of a derived message; offsets stay uncommitted."""


class NotAuthorized(DeliveryError):
    """The broker's ACLs refuse a write: an operator must grant it. The batch is retried (with
    backoff) until they do, rather than crash-looping."""


class KafkaUnavailable(AlertfeatError):
    """The brokers cannot be reached or refuse us (network, TLS or authentication)."""


class CatalogError(AlertfeatError):
    """A cross-match catalog is missing or malformed."""


class PlotError(AlertfeatError):
    """Nothing to plot (the object is not found) or matplotlib is missing."""
