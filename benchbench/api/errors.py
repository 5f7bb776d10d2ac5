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


class ComponentError(PluginError):
    """A component broke its contract while a job ran (a loss of the wrong shape, samples of the
    wrong size). Names the component's kind and name; the runner adds the plugin that provides it
    (:func:`benchbench.engines.failures.describe_failure`)."""

    def __init__(self, kind: str, name: str, message: str):
        self.kind = kind
        self.name = name
        BenchbenchError.__init__(self, f"{kind} {name!r}: {message}")
        self.plugin = name
        self.message = message

    def __reduce__(self):
        return type(self), (self.kind, self.name, self.message)
