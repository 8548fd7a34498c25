"""Cut-over from Filebeat: its registry's positions carried into ours, so switching re-ships nothing.

memlog.py reads Filebeat's store (never writing to it), file_states.py and
cursor_states.py map each kind of state onto our inputs, plan.py gathers what
would be written and what is left out with the reason, command.py is
`forwarder import-registry`, and startup.py the same on a first start.
"""
