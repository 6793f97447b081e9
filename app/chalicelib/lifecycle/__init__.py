"""A tenant's way out, and a recipient's right to be forgotten.

    audit.py      the tenant's audit trail (who, when, what): GET /audit
    spellings.py  every way an address can be written down, and scrubbing it out of a document
    erasure.py    DELETE /recipients/{email}: every trace of one address, gone or anonymised
    deletion.py   POST /tenant/deletion -> token, DELETE /tenant: everything of the tenant
    jobs.py       the jobs both run as (progress, cursors, leases) and the worker that resumes them
    routes.py     the routes (each declares its permission: an admin's, the progress any member's)

Disconnecting an AWS account (DELETE /account) is tenants/accounts.py's; it is audited here.
"""
