"""One exception type for bad user input, so the CLI can print one line and exit 2 without a traceback."""


class UsageError(Exception):
    """Bad input from the user (config, file, argument): the message names the problem and the fix."""
