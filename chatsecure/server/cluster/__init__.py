"""Several server nodes on one PostgreSQL database: the cluster hub and its buses."""

from chatsecure.server.cluster.hub import ClusterHub

__all__ = ["ClusterHub"]
