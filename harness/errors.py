"""Expected failures: the CLI prints each as one line and exits non-zero (a traceback only with
``--debug``-level logging). Bad records and configs raise ``ValueError`` subclasses (harness.io)."""


class HarnessError(Exception):
    """An expected failure, stated in one line that names its place (file, field, server)."""


class EndpointError(HarnessError):
    """A model endpoint refused requests or could not be reached: names the server and its message."""
