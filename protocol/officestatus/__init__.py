"""The OfficeStatus protocol: what the server and the client both speak and neither owns.

- `officestatus.licensing`, `officestatus.admin`: the code generated from `proto/` by
  `scripts/gen_protos.py` (never edited by hand);
- `officestatus.wire`: the wire-level enums, taken from the generated ones;
- `officestatus.paths`: where a server keeps its data, and the names of its files;
- `officestatus.formats`: the names and versions of the documents both sides read.

The server (`officestatus_server`) and the client (`officestatus_client`) depend on this
package and never on each other.
"""
