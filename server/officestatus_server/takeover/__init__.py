"""Taking over an older OfficeStatus Server installation (3.x, 4.x, 5.x) at the first
start: finding it, reading it without changing it, and making the 6.x database of it."""
