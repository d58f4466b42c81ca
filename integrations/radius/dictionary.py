"""The RADIUS attributes pushgate reads and writes, as a pyrad dictionary.

No I/O library is imported here: the load tests use it under gevent.
"""

from __future__ import annotations

import io

from pyrad.dictionary import Dictionary

# FreeRADIUS dictionary format; codes and types from RFC 2865, 2869, 3162 and 3579.
DICTIONARY_TEXT = """\
ATTRIBUTE User-Name 1 string
ATTRIBUTE User-Password 2 string encrypt=1
ATTRIBUTE CHAP-Password 3 octets
ATTRIBUTE NAS-IP-Address 4 ipaddr
ATTRIBUTE NAS-Port 5 integer
ATTRIBUTE Service-Type 6 integer
ATTRIBUTE Framed-Protocol 7 integer
ATTRIBUTE Reply-Message 18 string
ATTRIBUTE State 24 octets
ATTRIBUTE Class 25 octets
ATTRIBUTE Session-Timeout 27 integer
ATTRIBUTE Called-Station-Id 30 string
ATTRIBUTE Calling-Station-Id 31 string
ATTRIBUTE NAS-Identifier 32 string
ATTRIBUTE Proxy-State 33 octets
ATTRIBUTE NAS-Port-Type 61 integer
ATTRIBUTE EAP-Message 79 octets
ATTRIBUTE Message-Authenticator 80 octets
ATTRIBUTE NAS-IPv6-Address 95 ipv6addr
"""


def radius_dictionary() -> Dictionary:
    """A fresh pyrad dictionary with the attributes above."""
    return Dictionary(io.StringIO(DICTIONARY_TEXT))
