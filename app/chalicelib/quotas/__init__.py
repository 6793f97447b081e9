"""Quotas (invariant 11): what one tenant, one API key and one anonymous source address may do
per minute, enforced across instances through one shared counter store (Momento).

    limits    the limits, their defaults and per-tenant overrides, windows, counter layout
    limiter   the service: admit a request, charge sends, reserve bulk sends, the fallback
    momento   the counter store on Momento (one Increment per count)
"""
