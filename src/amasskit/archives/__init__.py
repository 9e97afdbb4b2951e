"""Unpacking the AMASS release archives: parallel, safe against hostile members, atomic, resumable, verified
against the release checksums. (Planned: issue "Ingest".)"""
