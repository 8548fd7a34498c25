"""`forwarder export`: a one-shot copy of a time range of a module's records, for investigations and audits."""
