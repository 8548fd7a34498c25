"""Fakes of remote peers that speak the real wire formats, failure modes included."""
