"""What every main shares: the verbosity words, console logging, user errors as one line and exit 2.

Only mains (and benchmarks) configure logging or install signal handlers; the library never does.
"""

from __future__ import annotations

import ast
import datetime
import difflib
import functools
import logging
import os
import re
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


# SEVERAL PROCESSES
#
# A multi-process run takes its layout from the flags (--coordinator_address, --num_processes,
# --process_id), else from jaxtrade's environment variables, else from a scheduler's: SLURM (srun
# sets SLURM_NTASKS, SLURM_PROCID and the node list) or Open MPI (mpirun: OMPI_COMM_WORLD_SIZE and
# _RANK). Nothing set: one process.

ENV_VARS = ("JAXTRADE_COORDINATOR_ADDRESS", "JAXTRADE_NUM_PROCESSES", "JAXTRADE_PROCESS_ID")
_SCHEDULERS = (("SLURM_NTASKS", "SLURM_PROCID"), ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"))


def _env_int(environ, name: str) -> int:
    try:
        return int(environ[name])
    except ValueError:
        raise ValueError(f"environment variable {name}={environ[name]!r} must be an integer") from None


def distributed_settings(coordinator_address, num_processes, process_id, environ=None):
    """What `devices.initialize_distributed` takes for this process: (address, count, id) from the
    flags or JAXTRADE_* variables; (None, None, None) under a scheduler that jax reads itself (SLURM,
    Open MPI); None for one process. ValueError naming what is missing when only some are set."""
    environ = os.environ if environ is None else environ
    flags_given = {"--coordinator_address": coordinator_address, "--num_processes": num_processes,
                   "--process_id": process_id}
    if any(v is not None for v in flags_given.values()):
        missing = [k for k, v in flags_given.items() if v is None]
        if missing:
            raise ValueError(f"a multi-process run needs --coordinator_address, --num_processes and "
                             f"--process_id together; missing {', '.join(missing)}")
        return coordinator_address, num_processes, process_id
    if any(environ.get(k) for k in ENV_VARS):
        missing = [k for k in ENV_VARS if not environ.get(k)]
        if missing:
            raise ValueError(f"{', '.join(k for k in ENV_VARS if environ.get(k))} set but "
                             f"{', '.join(missing)} not: set all three for a multi-process run, or none")
        return (environ[ENV_VARS[0]], _env_int(environ, ENV_VARS[1]), _env_int(environ, ENV_VARS[2]))
    for size, _ in _SCHEDULERS:
        if environ.get(size) and _env_int(environ, size) > 1:
            return None, None, None
    return None


def define_process_flags(what: str):
    """(--num_processes, --process_id) flag holders; `what`: what the processes share, for the help."""
    num = flags.DEFINE_integer("num_processes", None, f"Processes {what}.", lower_bound=1)
    pid = flags.DEFINE_integer("process_id", None, "This process's id in [0, --num_processes).",
                               lower_bound=0)
    return num, pid


def worker_of(num_processes, process_id, environ=None) -> tuple[int, int]:
    """(processes, this process's id) of a run whose processes share work without a coordinator (search
    trials, walk-forward folds): from the flags, else JAXTRADE_NUM_PROCESSES / JAXTRADE_PROCESS_ID,
    else SLURM's or Open MPI's task count and rank; (1, 0) when none is set."""
    environ = os.environ if environ is None else environ
    if num_processes is not None or process_id is not None:
        if num_processes is None or process_id is None:
            raise ValueError("--num_processes and --process_id go together")
        pair = (int(num_processes), int(process_id))
    elif environ.get(ENV_VARS[1]) or environ.get(ENV_VARS[2]):
        if not (environ.get(ENV_VARS[1]) and environ.get(ENV_VARS[2])):
            raise ValueError(f"set both {ENV_VARS[1]} and {ENV_VARS[2]}, or neither")
        pair = (_env_int(environ, ENV_VARS[1]), _env_int(environ, ENV_VARS[2]))
    else:
        pair = (1, 0)
        for size, rank in _SCHEDULERS:
            if environ.get(size) and environ.get(rank):
                pair = (_env_int(environ, size), _env_int(environ, rank))
                break
    if pair[0] < 1 or not 0 <= pair[1] < pair[0]:
        raise ValueError(f"process id {pair[1]} must be in [0, {pair[0]}) processes")
    return pair


# What a user can cause and fix by changing a flag, a config value or a file: bad data (DataError is a
# ValueError), a bad config value, a missing file. Anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError)


def user_errors_exit_2(main):
    """`main` for `app.run`: a user error prints one line (`error: <message>`) to stderr and exits
    with status 2; the traceback comes first at --verbosity=verbose. Called before `app.run` parses
    the flags, it first checks the command line's config overrides (`check_config_args`): a
    misspelled key or a value of the wrong type is one line and status 2 as well."""

    _check_config_flags()

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


# CONFIG OVERRIDES ON THE COMMAND LINE
#
# ml_collections parses `--config.a.b=value` inside absl's flag parsing (or, without --config, while
# the main module defines the flag): a misspelled key is a 55-line traceback there and a bad value a
# two-line "FATAL Flags parsing error". `check_config_args` reads the overrides first, against the
# config file the command line names, and turns each mistake into one line; it also gives the tuple
# fields their natural command-line form (`--config.data.train=2018-01-01,2019-12-31`).

SPLIT_KEYS = ("data.train", "data.val", "data.test")
SPLIT_FORMS = "START,END dates, e.g. 2018-01-01,2019-12-31 (leave a side empty for an open end: ,2019-12-31)"
_TYPE_WORDS = {float: "a float (e.g. 3e-4)", int: "an integer", bool: "a boolean (true or false)"}
_PARSERS = {float: flags.FloatParser(), int: flags.IntegerParser(), bool: flags.BooleanParser()}


def split_dates(key: str, text: str) -> tuple:
    """`--config.data.train`'s value as the (start, end) pair that `data.split` takes: "START,END"
    (ISO dates, an empty side is None: open), or the Python form "('2018-01-01', '2019-12-31')"."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text.split(",")
    if isinstance(value, (tuple, list)) and len(value) == 2:
        pair = tuple(None if v is None or str(v).strip() in ("", "None", "none") else str(v).strip()
                     for v in value)
        try:
            for v in pair:
                if v is not None:
                    datetime.datetime.fromisoformat(v)
            if pair != (None, None):
                return pair
        except ValueError:
            pass
    raise ValueError(f"config key {key} takes {SPLIT_FORMS}; got {text!r}")


def _tuple_value(text: str) -> tuple:
    """A tuple field's command-line value: a Python literal ("('AAPL', 'MSFT')", "(1, 2)") or a
    comma-separated list of words ("AAPL,MSFT")."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = None
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return tuple(w.strip() for w in text.split(",") if w.strip())


def _unknown_key(config, path: str) -> str | None:
    """The one-line message for an override path that is not a key of `config`, else None."""
    node, done = config, []
    parts = path.split(".")
    for i, part in enumerate(parts):
        if not hasattr(node, "keys"):
            return f"config key {'.'.join(done)} is a value, not a section: there is no {path}"
        keys = list(node.keys())
        if part not in keys:
            close = difflib.get_close_matches(part, keys, n=1)
            if not close:
                where = f"{'.'.join(done)} has" if done else "the config has top-level keys"
                return f"unknown config key {path} ({where} {', '.join(sorted(keys))})"
            guess = done + close + parts[i + 1:]
            if _unknown_key(config, ".".join(guess)) is not None:
                guess = done + close
            return f"unknown config key {path} (did you mean {'.'.join(guess)}?)"
        node = node[part]
        done.append(part)
    return None


def check_config_args(argv: list[str], name: str, config) -> list[str]:
    """`argv` with its `--<name>.<key>=value` overrides checked against `config` (the loaded config
    file): raises ValueError with one line for an unknown key (naming the closest known key) or a
    value that does not parse as the key's type; returns argv with tuple values in the form
    ml_collections parses (data.train / val / test: `START,END`, see `split_dates`; other tuples: a
    comma-separated list). Repeated flags for one tuple key (`--config.data.train=A
    --config.data.train=B`) are joined into one value."""
    from ml_collections.config_flags import config_path

    pattern = re.compile(rf"^--?(no)?{re.escape(name)}\.([^=]+)(?:=(.*))?$", re.DOTALL)
    out, tuples = [], {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        m = pattern.match(arg) if i > 0 and arg != "--" else None
        if arg == "--":
            out.extend(argv[i:])
            break
        if m is None:
            out.append(arg)
            i += 1
            continue
        negated, path, value = m.group(1), m.group(2), m.group(3)
        problem = _unknown_key(config, path)
        if problem:
            raise ValueError(problem)
        kind = config_path.get_type(path, config)
        if value is None and not negated and kind is not bool and i + 1 < len(argv):
            value, i = argv[i + 1], i + 1                    # the `--config.a.b value` form
        i += 1
        if kind is tuple and value is not None:
            if path in tuples:                               # a repeated flag: one more element
                at, previous = tuples[path]
                joined = f"{previous},{value}"
                tuples[path] = (at, joined)
                out[at] = f"--{name}.{path}={joined}"
            else:
                tuples[path] = (len(out), value)
                out.append(f"--{name}.{path}={value}")
            continue
        if kind is type(None):
            raise ValueError(f"config key {path} is None in this config file, so it has no type to parse "
                             f"{value!r} as: set it in a config file")
        if kind in _PARSERS and value is not None:
            try:
                _PARSERS[kind].parse(value)
            except ValueError:
                raise ValueError(f"config key {path} takes {_TYPE_WORDS[kind]}, got {value!r}") from None
        out.append(arg if value is None or "=" in arg else f"--{name}.{path}={value}")
    for path, (at, text) in tuples.items():
        pair = split_dates(path, text) if path in SPLIT_KEYS else _tuple_value(text)
        out[at] = f"--{name}.{path}={pair!r}"
    return out


def flag_in_argv(argv: list[str], name: str, default: str | None = None) -> str | None:
    """Flag `name`'s value on the command line (`--<name>=v` or `--<name> v`, the last wins), read before
    absl parses flags (a config file's path; `experiments.reproduce`'s --paper); else `default`."""
    path = default
    for i, arg in enumerate(argv[1:], 1):
        if arg == "--":
            break
        if arg.startswith((f"--{name}=", f"-{name}=")):
            path = arg.split("=", 1)[1]
        elif arg in (f"--{name}", f"-{name}") and i + 1 < len(argv):
            path = argv[i + 1]
    return path


def checked_argv(argv: list[str], name: str, default: str | None, parser) -> list[str]:
    """`check_config_args` for config flag `name` (its file from argv, else `default`, loaded with
    the flag's `parser`); a config file that does not load is left for ml_collections to report."""
    from ml_collections import config_dict

    path = flag_in_argv(argv, name, default)
    if not path:
        return argv
    try:
        config = parser.parse(path)
    except Exception:   # noqa: BLE001 -- the real parse reports a broken config file with its traceback
        return argv
    if not isinstance(config, config_dict.ConfigDict):
        return argv
    return check_config_args(argv, name, config)


def _check_sys_argv_or_exit(name: str, default: str | None, parser) -> None:
    try:
        sys.argv[:] = checked_argv(sys.argv, name, default, parser)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)


def define_config_file(name: str, default: str | None, help_string: str, **kwargs):
    """`config_flags.DEFINE_config_file` with the command line's overrides checked first: without
    --config, ml_collections applies them while the flag is defined, before `app.run`."""
    from ml_collections.config_flags import config_flags as cf

    parser = cf.ConfigFileFlagParser(name=name, lock_config=kwargs.get("lock_config", True))
    _check_sys_argv_or_exit(name, default, parser)
    return cf.DEFINE_config_file(name, default, help_string, **kwargs)


def _check_config_flags() -> None:
    """Every defined config flag's overrides in sys.argv, checked before `app.run` parses them."""
    from ml_collections.config_flags import config_flags as cf

    for name in list(flags.FLAGS):
        flag = flags.FLAGS[name]
        if cf.is_config_flag(flag) and flag.name == name:
            default = getattr(flag, "default_unparsed", None)   # unset when argv names the file
            _check_sys_argv_or_exit(name, default if isinstance(default, str) else None, flag.parser)
