"""``piiport serve``: the access-request HTTP service, its job store, tokens and audit trail.

Nothing here imports FastAPI or uvicorn at module level except ``app`` and ``console``, so
the CLI (and the audit hook of every export) stays light.
"""
