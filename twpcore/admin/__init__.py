"""Administration services: the stored objects admins create, change and delete, their tenancy and audit log.

The HTTP layer (``twpcore.http.resources``) reads requests and answers; the rules and the
SQL are here, run in the store's thread pool with their dependencies passed explicitly.
"""
