"""Message search: the query syntax (`syntax`), the index on each database (`index`) and
the snippet of a result (`snippet`). The route is api/search.py."""
