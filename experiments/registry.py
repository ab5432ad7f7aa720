r"""The model registry (`jaxtrade.pipeline.registry`) from the command line:

python -m experiments.registry list [--name=ppo_sp500] [--stage=rl] [--grade=A-|">=B"] [--alias=champion]
python -m experiments.registry info ppo_sp500@champion
python -m experiments.registry promote ppo_sp500/v3 --alias=champion
python -m experiments.registry verify [REF]            # exit 1 if any stored artifact fails, naming the file
python -m experiments.registry benchmark [REF ...] [--split=val|test]
python -m experiments.registry register NAME ARTIFACT_DIR --stage=rl [--parents=enc/v1] [--tags=a,b]

Every command takes --root (default: $JAXTRADE_REGISTRY, else ./registry). A ref is name/v<k>,
name@<alias>, name@<semver> or name (its latest version). `list` prints one row per entry: ref,
semver, stage, grade (from held-out metrics only; "ungraded" without them), score, created (UTC, to
the minute), the split its held-out metrics come from, the key metrics of both kinds, labelled
"(held-out)" and "(selection)" (sharpe, max_dd, ann_ret; for encoders val_r2, dir_edge), aliases and
parents. `benchmark`
backtests the models (default: every entry with a policy, i.e. not stage pretrain) over one split
of their own data (default val; --split=test for the final comparison) and prints the split's dates,
then ref, grade (as registered), split_grade (these numbers' grade), Sharpe, annual return, max drawdown
and turnover of each model, then of the baselines of the same split in the same env (costs, gate):
baseline:equal_weight_buy_hold, ..., baseline:index, baseline:random (mean of its seeds).
A user error (an unknown ref, a bad flag value, a tampered artifact) prints one line
and exits 2.
"""

import os

from absl import app, flags

from experiments import common

COMMANDS = ("list", "info", "promote", "verify", "benchmark", "register")
_ROOT = flags.DEFINE_string("root", None, "Registry directory (default: $JAXTRADE_REGISTRY, else "
                            "./registry).")
_NAME = flags.DEFINE_string("name", None, "list: only this model name.")
_STAGE = flags.DEFINE_string("stage", None, "list: only this stage; register: the model's stage "
                             "(pretrain | rl | hybrid | ensemble).")
_GRADE = flags.DEFINE_string("grade", None, "list: only this grade (A-) or at least it (>=B).")
_ALIAS = flags.DEFINE_string("alias", None, "list: only entries with this alias; promote: the alias to give; "
                             "register: an alias for the new version.")
_SPLIT = flags.DEFINE_enum("split", "val", ["val", "test"], "benchmark: which split of each model's data.")
_PARENTS = flags.DEFINE_list("parents", [], "register: refs of the entries the model was built from.")
_TAGS = flags.DEFINE_list("tags", [], "register: free-form tags.")
_METRICS_SPLIT = flags.DEFINE_enum("metrics_split", None, ["val", "test"], "register: the split the "
                                   "artifact's flat (earlier-version) metrics come from: val = selection, "
                                   "test = held-out.")
_DESCRIPTION = flags.DEFINE_string("description", "", "register: a line about the model.")
common.accept_verbosity_words()


def info_lines(reg, ref: str) -> list[str]:
    from jaxtrade.pipeline.registry import ChecksumError, describe_grade

    e = reg.get(ref)
    try:
        reg.check(e)
        checked = "ok (SHA-256 of every file matches the index)"
    except ChecksumError as err:
        checked = f"FAILED: {err}"
    children = [c.ref for c in reg.entries() if e.ref in c.parents]
    lines = [f"ref:         {e.ref}", f"semver:      {e.semver}", f"stage:       {e.stage}",
             (f"grade:       {e.grade} (score {e.score:.3f}, from held-out {e.held_out.get('split')} metrics)"
              if e.graded else "grade:       ungraded (no held-out metrics: selection metrics never grade)"),
             *(f"  {d}" for d in (describe_grade(e.held_out, e.stage) if e.graded else ())),
             f"created:     {e.created}", f"aliases:     {', '.join(e.aliases) or '-'}",
             f"tags:        {', '.join(e.tags) or '-'}", f"parents:     {', '.join(e.parents) or '-'}",
             f"children:    {', '.join(children) or '-'}", f"description: {e.description or '-'}",
             f"path:        {e.path}", f"source:      {e.source}", f"checksums:   {checked}"]
    for title, metrics in (("held-out metrics (data no choice has seen):", e.held_out),
                           ("selection metrics (the data that chose the model):", e.selection)):
        lines += [title] + ([f"  {k}: {v}" for k, v in metrics.items()] or ["  -"])
    if e.trials:
        lines += ["trials behind the model:"] + [f"  {k}: {v}" for k, v in e.trials.items()
                                                 if not isinstance(v, (list, dict))]
    return lines + ["files:"] + [f"  {sha[:16]}  {rel}" for rel, sha in e.files.items()]


def benchmark_rows(rows: list[dict]) -> list[dict]:
    """The table's rows: models, then the baselines of the same split (a period column where the rows'
    periods differ)."""
    from jaxtrade.pipeline.registry import format_metric as fmt

    periods = {r.get("period") for r in rows}
    return [dict(ref=r["ref"], grade=r["grade"], split_grade=r["split_grade"], sharpe=fmt(r, "sharpe", False),
                 annual_return=fmt(r, "annual_return", True), max_drawdown=fmt(r, "max_drawdown", True),
                 turnover=fmt(r, "turnover", False), **({"period": r["period"]} if len(periods) > 1 else {}))
            for r in rows]


def benchmark_lines(rows: list[dict], split: str) -> list[str]:
    """`benchmark`'s output: the split and its dates, the table, what the baselines are."""
    from jaxtrade.pipeline.registry import text_table

    if not rows:
        return ["no models to benchmark"]
    periods = sorted({r["period"] for r in rows})
    head = f"split: {split} ({periods[0] if len(periods) == 1 else 'periods: see each row'})"
    notes = [f"{r['ref']}: {r['label']}" for r in rows
             if r["kind"] == "baseline" and r["label"] != r["ref"].removeprefix("baseline:")]
    return [head, text_table(benchmark_rows(rows)), "",
            "baselines: the same split in the models' env (costs, turbulence gate); grade '-': baselines are "
            "not registered, split_grade: the grade their metrics would give an rl model", *notes]


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        raise app.UsageError(f"give a command, one of {COMMANDS} (got {argv[1:2] or 'none'})")
    command, args = argv[1], argv[2:]
    common.setup_logging(common.verbosity_word())
    from jaxtrade.pipeline import registry

    reg = registry.Registry(_ROOT.value or os.environ.get("JAXTRADE_REGISTRY") or "registry")
    want = {"list": (0, 0), "info": (1, 1), "promote": (1, 1), "verify": (0, 1), "benchmark": (0, None),
            "register": (2, 2)}[command]
    if len(args) < want[0] or (want[1] is not None and len(args) > want[1]):
        raise app.UsageError(f"{command} takes {want[0]}{'' if want[1] == want[0] else '+'} positional "
                             f"argument(s), got {args}")
    if command == "list":
        entries = reg.list(name=_NAME.value, stage=_STAGE.value, grade=_GRADE.value, alias=_ALIAS.value)
        rows = registry.list_rows(entries)
        empty = f"no entries match in {reg.index_path}" if os.path.exists(reg.index_path) else \
            f"nothing registered in {reg.root} yet (no {os.path.basename(reg.index_path)})"
        print(registry.text_table(rows) if rows else empty, flush=True)
    elif command == "info":
        print("\n".join(info_lines(reg, args[0])), flush=True)
    elif command == "promote":
        if not _ALIAS.value:
            raise ValueError("promote needs --alias (e.g. --alias=champion)")
        e = reg.promote(args[0], _ALIAS.value)
        print(f"{e.name}@{_ALIAS.value} -> {e.ref}", flush=True)
    elif command == "verify":
        report = reg.verify(args[0] if args else None)
        for ref in report.checked:
            print(f"FAILED {report.failures[ref]}" if ref in report.failures else f"ok     {ref}", flush=True)
        for orphan in report.orphans:
            print(f"orphan {orphan}: a version directory not in the index (a registration that did not "
                  "finish); not listed", flush=True)
        print(f"{len(report.checked)} entries checked, {len(report.failures)} failed", flush=True)
        return 0 if report.ok else 1
    elif command == "benchmark":
        rows = registry.benchmark(reg, args, split=_SPLIT.value)
        print("\n".join(benchmark_lines(rows, _SPLIT.value)), flush=True)
    else:
        if not _STAGE.value:
            raise ValueError(f"register needs --stage (one of {registry.STAGES})")
        e = reg.register(args[0], args[1], stage=_STAGE.value, parents=_PARENTS.value,
                         metrics_split=_METRICS_SPLIT.value, tags=_TAGS.value,
                         aliases=(_ALIAS.value,) if _ALIAS.value else (), description=_DESCRIPTION.value)
        print(f"{e.ref} {e.semver} grade {e.grade} (score {e.score:.3f}) {e.path}", flush=True)
    return 0


if __name__ == "__main__":
    app.run(common.user_errors_exit_2(main))
