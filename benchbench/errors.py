"""Errors a user can fix. The CLI prints each as one line and exits with code 2.

Internal invariants stay plain ``assert``s: they are bugs, not user errors.
"""


class BenchbenchError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2


class ConfigError(BenchbenchError):
    """A suite file or a command-line override is wrong.

    ``where`` names the file and key (``suites/x.yaml: objectives.gmmn.lr``).
    """

    def __init__(self, where: str, message: str):
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)

    def __reduce__(self):  # rebuilt intact when sent back from a worker process
        return type(self), (self.where, self.message)


class PluginError(BenchbenchError):
    """A plugin could not be loaded or returned something the core rejects."""

    def __init__(self, plugin: str, message: str):
        self.plugin = plugin
        self.message = message
        super().__init__(f"plugin {plugin!r}: {message}")

    def __reduce__(self):
        return type(self), (self.plugin, self.message)
