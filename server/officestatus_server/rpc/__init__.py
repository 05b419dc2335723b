"""The gRPC layer: maps messages and client releases onto the license service."""
