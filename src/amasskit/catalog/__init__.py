"""Every motion file of an AMASS tree as one row in SQLite, scanned from headers in parallel and incrementally;
queries and split schemes. (Planned: issue "Ingest".)"""
