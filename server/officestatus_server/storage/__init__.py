"""Where the server keeps its state: the `Store` interface (`base`) and its SQLite
implementation (`sqlite`). Import each from its module: the service needs only the
interface, and loading this package loads no implementation."""
