"""Masking of credentials in what gets logged: URLs and librdkafka dicts.

Every form in which a credential can reach our settings is covered: URL userinfo
(`redis://user:pw@host`, all of it), credential query parameters (`?password=`, `?username=`, `?token=`),
and librdkafka keys (`sasl.password`, `ssl.key.password`, `ssl.keystore.password`,
`sasl.oauthbearer.client.secret`, `sasl.oauthbearer.config`, inline PEM keys, ...).
"""

from __future__ import annotations

import re
from typing import Any

MASK = "**********"

# librdkafka keys whose value is, or may contain, a credential.
_SECRET_KEY = re.compile(r"password|secret|token|credential|private|key\.pem|oauthbearer\.(config|extensions)"
                         r"|jaas", re.IGNORECASE)
# Query parameters that carry credentials (redis-py passes every one on to the connection).
_SECRET_PARAM = re.compile(r"^(password|passwd|pwd|pass|username|user|token|access_token|secret|api_?key|auth)$",
                           re.IGNORECASE)
_USERINFO = re.compile(r"//[^/@?#]*@")  # user:password@ (a user name is a credential too)
_QUERY_PARAM = re.compile(r"([?&;])([^=&;#]+)=([^&;#]*)")


def mask_url(url: str) -> str:
    """`url` with its userinfo and every credential query parameter masked."""
    url = _USERINFO.sub(f"//{MASK}@", url)
    return _QUERY_PARAM.sub(lambda m: f"{m[1]}{m[2]}={MASK}" if _SECRET_PARAM.match(m[2]) else m[0], url)


def mask_librdkafka(config: dict[str, Any]) -> dict[str, Any]:
    """A librdkafka dict that is safe to log: secret keys masked, URLs in values masked."""
    return {k: (MASK if _SECRET_KEY.search(k) else mask_url(v) if isinstance(v, str) else v)
            for k, v in config.items()}
