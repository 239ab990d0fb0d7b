"""The `assistant` command: ingest, search, ask, serve, status, eval, partners (`main.main`)."""
