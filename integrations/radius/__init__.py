"""``pushgate radius``: a RADIUS server (RFC 2865, 3579, 5080) for VPN and Wi-Fi logins.

It sends a push (or checks a TOTP code) through the public HTTP API with a portal key and
answers the NAS with Access-Accept, Access-Reject or Access-Challenge. This package module
imports nothing, so the gevent load tests can use :mod:`integrations.radius.dictionary`.
"""
