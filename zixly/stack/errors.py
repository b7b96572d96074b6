"""What goes wrong bringing the local stack up, said in one line with its remedy."""


class StackError(RuntimeError):
    """A condition the operator can fix (a port in use, a missing binary); the CLI prints it without a traceback."""
