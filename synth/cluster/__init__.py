"""Cluster mode: agents sharing one PostgreSQL store and one location split the checks
between them (synth.cluster.rendezvous chooses the owner of each check × environment)."""
