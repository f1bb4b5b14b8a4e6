"""Several `roomler serve` nodes sharing one PostgreSQL database and one Redis.

See `docs/architecture.md` ("Several nodes"): `node.ClusterNode` is one process's part of
the cluster; `dispatcher`, `presence` and `conference` plug into the real-time layer and
the conference service; `link` is the connection to Redis, `scripts` its keys and Lua,
`wire` what nodes send each other.
"""
