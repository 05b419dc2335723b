"""Command-line entry points: the server, and the vendor's key tool."""
