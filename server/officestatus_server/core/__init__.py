"""The licensing rules: pure functions and frozen values, no I/O, `now` always passed in.

Nothing here imports the network or the database; the gRPC layer and storage only carry
what these modules decide.
"""
