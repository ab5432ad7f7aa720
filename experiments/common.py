"""What every main shares: the verbosity words, console logging, user errors as one line and exit 2.

Only mains (and benchmarks) configure logging or install signal handlers; the library never does.
"""

from __future__ import annotations

import functools
import logging
import sys
import traceback

from absl import flags
from absl import logging as absl_logging

VERBOSITIES = ("quiet", "normal", "verbose")
_CHOSEN = {"verbosity": "normal"}


class _VerbosityParser(flags.IntegerParser):
    """absl's own --verbosity, also accepting quiet | normal | verbose."""

    WORDS = {"quiet": -1, "normal": 0, "verbose": 1}

    def parse(self, argument):
        if isinstance(argument, str) and argument.lower() in self.WORDS:
            return self.WORDS[argument.lower()]
        return super().parse(argument)


def accept_verbosity_words() -> None:
    flags.FLAGS["verbosity"].parser = _VerbosityParser()


def verbosity_word() -> str:
    v = flags.FLAGS.verbosity
    return "quiet" if v < 0 else ("verbose" if v > 0 else "normal")


def setup_logging(verbosity: str) -> None:
    """The `jaxtrade` logger to stderr by verbosity (quiet: warnings; normal: info; verbose: debug);
    libraries' absl INFO lines (Orbax logs every save) only at verbose."""
    if verbosity not in VERBOSITIES:
        raise ValueError(f"verbosity must be one of {VERBOSITIES}, got {verbosity!r}")
    _CHOSEN["verbosity"] = verbosity   # absl's set_verbosity below rewrites FLAGS.verbosity
    absl_logging.set_verbosity(absl_logging.INFO if verbosity == "verbose" else absl_logging.WARNING)
    log = logging.getLogger("jaxtrade")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    console = logging.StreamHandler(sys.stderr)
    console.setLevel({"quiet": logging.WARNING, "normal": logging.INFO, "verbose": logging.DEBUG}[verbosity])
    console.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(console)


# What a user can cause and fix by changing a flag, a config value or a file: bad data (DataError is a
# ValueError), a bad config value, a missing file. Anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError)


def user_errors_exit_2(main):
    """`main` for `app.run`: a user error prints one line (`error: <message>`) to stderr and exits
    with status 2; the traceback comes first at --verbosity=verbose."""

    @functools.wraps(main)
    def wrapped(argv):
        try:
            return main(argv)
        except USER_ERRORS as e:
            verbose = _CHOSEN["verbosity"] == "verbose"
            if verbose:
                traceback.print_exc()
            message = " ".join(str(e).split()) or type(e).__name__
            hint = "" if verbose else " (--verbosity=verbose for the traceback)"
            print(f"error: {message}{hint}", file=sys.stderr, flush=True)
            sys.exit(2)

    return wrapped
