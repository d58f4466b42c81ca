"""Adapters for systems that cannot call the API themselves (SSH, RADIUS).

Each integration is a client of the public HTTP API holding a portal key, like any identity
portal: it never imports gateway, pusher or approvals.store and never touches Redis.
"""
