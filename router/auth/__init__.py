"""Who may call the router, for which models, how urgently and how often.

    credentials ──authenticate──► Principal ──authorize──► headers ──rate limit──► serve
    (API key / bearer JWT)        (tenant, models,         (x-tenant set,         (token buckets,
                                   max priority, limits)    x-priority capped)     shared via Redis)

`Authenticator` is the one implementation both fronts call (docs/security.md,
"Authentication and tenancy"). Without an `auth` section the router is open.
"""
