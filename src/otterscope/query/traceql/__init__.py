"""TraceQL: the grammar, its syntax tree and the parser that checks it (the store lowers
the tree to SQL: ``store/embedded/traceql_sql.py``)."""
