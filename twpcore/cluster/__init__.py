"""Several TWP nodes on one PostgreSQL and one Redis (issue 20, ``docs/cluster.md``).

``ClusterNode`` (``node.py``) is what a node runs when ``[cluster] redis`` is set: leases
with fencing tokens (``leases.py``) for PBX links and jobs, the event bus's transport to a
Redis stream (``streams.py``), and the status the CLI and the health read (``status.py``).
Without ``[cluster]`` none of this is built and TWP is one process, as before.
"""

from twpcore.cluster.jobs import LOCAL_JOBS, Jobs

__all__ = ["LOCAL_JOBS", "Jobs"]
