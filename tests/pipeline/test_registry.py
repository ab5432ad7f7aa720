"""The model registry: grades pinned at every boundary, versions and semantic versions, aliases, tags
and filters, SHA-256 checks against tampering, parents, concurrent registration by two processes,
a registration killed mid-way, the command line, and a real artifact loaded and benchmarked.

Fake artifacts (a spec.json, params.npz bytes and a preprocessor file) stand in for trained models
everywhere except the last tests, which save one untrained smoke-config model.
"""

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxtrade.pipeline import registry as reg_lib
from jaxtrade.pipeline.registry import ChecksumError, Registry, RegistryError, grade, letter_of

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# What a trained model records: the validation metrics that chose it (selection) and its test split's
# (held-out). Only the held-out ones grade; the selection ones are better, as selection makes them.
RL = {"sharpe": 1.25, "max_drawdown": -0.10, "annual_return": 0.08, "split": "test"}
SEL = {"sharpe": 3.0, "max_drawdown": -0.05, "annual_return": 0.30, "split": "val"}

# The issue's thresholds, written out here independently of the module: (threshold, letter, letter below).
BOUNDARIES = [(0.95, "S", "A+"), (0.90, "A+", "A"), (0.80, "A", "A-"), (0.70, "A-", "B+"), (0.60, "B+", "B"),
              (0.50, "B", "B-"), (0.40, "B-", "C"), (0.30, "C", "D"), (0.20, "D", "F")]


def fake_artifact(path, *, params=b"params-0", metrics=None, obs=None, action=None, agent=None):
    """A directory with the artifact layout: spec.json, params.npz (bytes), preprocessor/."""
    os.makedirs(os.path.join(path, "preprocessor"), exist_ok=True)
    spec = {"format": "jaxtrade-model/1", "obs_spec": obs or {"features": [8, 3]},
            **({"agent": agent} if agent else {}),
            "action_spec": action or {"kind": "discrete", "n": 12},
            "metrics": {"selection": SEL, "held_out": RL} if metrics is None else metrics}
    with open(os.path.join(path, "spec.json"), "w") as f:
        json.dump(spec, f)
    with open(os.path.join(path, "params.npz"), "wb") as f:
        f.write(params)
    with open(os.path.join(path, "preprocessor", "preprocessor.json"), "w") as f:
        f.write('{"window": 8}')
    return str(path)


@pytest.fixture
def reg(tmp_path):
    return Registry(tmp_path / "registry")


@pytest.fixture
def src(tmp_path):
    return fake_artifact(tmp_path / "model")


# GRADES


@pytest.mark.parametrize("threshold,letter,below", BOUNDARIES)
def test_every_grade_boundary(threshold, letter, below):
    assert letter_of(threshold) == letter
    assert letter_of(math.nextafter(threshold, 0.0)) == below
    assert letter_of(threshold - 1e-6) == below
    # Through the metrics: a Sharpe-only RL entry scores (sharpe - 0.5) / 1.5; at 0.5 + 1.5 t the score is
    # t up to float error (1.7 -> 0.7999999999999999), which must not drop the grade below the boundary.
    assert grade({"sharpe": 0.5 + 1.5 * threshold}, "rl") == (letter, pytest.approx(threshold, abs=1e-9))
    assert grade({"sharpe": 0.5 + 1.5 * (threshold - 1e-6)}, "rl")[0] == below


def test_grade_ends_and_grading_table():
    assert letter_of(1.0) == "S" and letter_of(0.0) == "F"
    assert [g for g, _ in reg_lib.GRADES] + ["F"] == [b[1] for b in BOUNDARIES] + ["F"]
    table = reg_lib.grading_table()
    assert "| rl | sharpe | 0.5 | 2 | 2 |" in table
    assert "| rl | abs(max_drawdown) | 0.3 | 0.05 | 1.5 |" in table
    assert "| pretrain | directional_accuracy_edge | 0 | 0.1 | 1 |" in table and "D >= 0.20, F below" in table


def test_normalization_clips_at_both_ends():
    sharpe, mdd, ann = reg_lib.GRADE_METRICS["rl"]
    assert sharpe.normalize(1.25) == pytest.approx(0.5)                 # (1.25 - 0.5) / 1.5
    assert sharpe.normalize(5.0) == 1.0 and sharpe.normalize(-3.0) == 0.0 and sharpe.normalize(2.0) == 1.0
    assert mdd.normalize(-0.175) == pytest.approx(0.5)                  # |-0.175|: (0.175 - 0.30) / -0.25
    assert mdd.normalize(-0.01) == 1.0 and mdd.normalize(-0.6) == 0.0 and mdd.normalize(-0.30) == 0.0
    assert ann.normalize(0.5) == 1.0 and ann.normalize(-0.2) == 0.0
    assert ann.normalize(0.05) == pytest.approx(0.2)
    assert sharpe.normalize(None) == 0.0 and sharpe.normalize(float("nan")) == 0.0


def test_weights_missing_values_and_encoders():
    # sharpe 2.0 -> 1 (weight 2), max drawdown -0.30 -> 0 (1.5), annual return 0.125 -> 0.5 (1): 2.5 / 4.5
    assert grade({"sharpe": 2.0, "max_drawdown": -0.30, "annual_return": 0.125}, "rl") == ("B", 0.555555556)
    # sharpe 0.5 -> 0 (2), max drawdown -0.05 -> 1 (1.5), annual return 0 -> 0 (1): 1.5 / 4.5
    assert grade({"sharpe": 0.5, "max_drawdown": -0.05, "annual_return": 0.0}, "hybrid") == ("C", 0.333333333)
    # A Sharpe without a value counts 0, it is not dropped: it cannot raise the grade.
    assert grade({"sharpe": None, "annual_return": 0.25}, "rl") == ("C", 0.333333333)
    assert grade({"sharpe": float("nan"), "annual_return": 0.25}, "ensemble") == ("C", 0.333333333)
    assert grade({"annual_return": 0.25}, "rl") == ("S", 1.0)           # an absent key is left out
    # Encoders: R^2 0.05 -> 0.5, directional accuracy's edge over the majority class 0.08 -> 0.8, equal
    # weights; RL metrics and the raw accuracy ("always up" scores 0.535 on its own) ignored.
    edge = "directional_accuracy_edge"
    assert grade({"val_r2": 0.05, edge: 0.08, "sharpe": 3.0}, "pretrain") == ("B+", 0.65)
    assert grade({edge: 0.06}, "pretrain") == ("B+", 0.6)   # 0.6000000000000005 rounded
    assert grade({"directional_accuracy": 0.535, edge: 0.0}, "pretrain") == ("F", 0.0)
    assert grade({}, "rl") == ("F", 0.0) and grade({"sharpe": None}, "rl") == ("F", 0.0)
    assert grade({"sharpe": 3.0}, "pretrain") == ("F", 0.0)
    assert "no usable metrics" in reg_lib.describe_grade({"sharpe": None}, "rl")[0]
    with pytest.raises(RegistryError, match="stage 'supervised' must be one of"):
        grade({}, "supervised")


# REGISTER, VERSIONS, ALIASES, FILTERS


def test_register_copies_hashes_and_increments_versions(reg, src):
    entries = [reg.register("ppo_sp500", src, stage="rl") for _ in range(3)]
    assert [e.ref for e in entries] == ["ppo_sp500/v1", "ppo_sp500/v2", "ppo_sp500/v3"]
    e = entries[-1]
    assert e.path == os.path.join(reg.root, "ppo_sp500", "v3") and os.path.isdir(e.path)
    want = hashlib.sha256(open(os.path.join(src, "params.npz"), "rb").read()).hexdigest()
    assert e.files["params.npz"] == want
    assert sorted(e.files) == ["params.npz", "preprocessor/preprocessor.json", "spec.json"]
    assert open(os.path.join(e.path, "preprocessor", "preprocessor.json")).read() == '{"window": 8}'
    # both kinds of metrics from spec.json; the grade from the held-out ones: (0.5*2 + 0.8*1.5 + 0.32*1) / 4.5
    assert e.held_out["split"] == "test" and e.held_out["sharpe"] == 1.25
    assert e.selection == SEL
    assert (e.grade, e.score) == ("B", pytest.approx(2.52 / 4.5, abs=1e-9))
    assert reg.get("ppo_sp500").ref == "ppo_sp500/v3" and reg.get("ppo_sp500/v2").version == 2
    index = json.load(open(reg.index_path))
    assert [x["path"] for x in index["entries"]] == ["ppo_sp500/v1", "ppo_sp500/v2", "ppo_sp500/v3"]
    assert Registry(reg.root).entries() == entries            # read back from index.json
    other = reg.register("enc", src, stage="pretrain", metrics={"val_r2": 0.02}, metrics_split="test",
                         description="an encoder")
    assert other.ref == "enc/v1" and (other.grade, other.held_out["split"]) == ("D", "test")
    with pytest.raises(RegistryError, match="'ppo_sp500/v9' is not in .*ppo_sp500/v1 \\(1.0.0\\)"):
        reg.get("ppo_sp500/v9")
    with pytest.raises(RegistryError, match="no model named 'nope'"):
        reg.get("nope")


def test_register_refuses_bad_names_stages_splits_and_sources(reg, src, tmp_path):
    for bad in ("a/b", ".hidden", "a b", "index.json", ""):
        with pytest.raises(RegistryError, match=r"\[A-Za-z0-9_.-\]\+"):
            reg.register(bad, src, stage="rl")
    with pytest.raises(RegistryError, match="stage 'sl' must be one of"):
        reg.register("m", src, stage="sl")
    with pytest.raises(RegistryError, match="metrics_split .* is 'train'"):
        reg.register("m", src, stage="rl", metrics=RL, metrics_split="train")
    with pytest.raises(RegistryError, match="held-out metrics .* need their 'split'"):
        reg.register("m", src, stage="rl", held_out={"sharpe": 1.0})
    with pytest.raises(RegistryError, match="alias '1.2.0' looks like a version"):
        reg.register("m", src, stage="rl", aliases=("1.2.0",))
    with pytest.raises(RegistryError, match="metric 'sharpe' .* is 'high'"):
        reg.register("m", src, stage="rl", metrics={"sharpe": "high", "split": "val"})
    with pytest.raises(RegistryError, match="is not a model artifact: it has no spec.json"):
        reg.register("m", str(tmp_path), stage="rl")
    assert reg.entries() == []
    e = reg.register("m", src, stage="rl", metrics={"sharpe": np.float32(np.nan), "iteration": np.int64(4),
                                                     "split": "test"})
    assert e.held_out == {"sharpe": None, "iteration": 4, "split": "test"} and e.grade == "F"


def test_semantic_versions(reg, tmp_path):
    a = fake_artifact(tmp_path / "a")
    assert reg.register("m", a, stage="rl").semver == "1.0.0"
    fake_artifact(tmp_path / "a", metrics=dict(RL, sharpe=1.5))               # spec.json metadata only
    assert reg.register("m", a, stage="rl").semver == "1.0.1"
    assert reg.register("m", a, stage="rl").semver == "1.0.2"                   # nothing changed
    fake_artifact(tmp_path / "a", metrics=dict(RL, sharpe=1.5), params=b"retrained")   # same spec
    assert reg.register("m", a, stage="rl").semver == "1.1.0"
    fake_artifact(tmp_path / "a", params=b"retrained", obs={"features": [8, 4]})       # new observation
    assert reg.register("m", a, stage="rl").semver == "2.0.0"
    fake_artifact(tmp_path / "a", params=b"retrained", obs={"features": [8, 4]}, action={"n": 3})
    assert reg.register("m", a, stage="rl").semver == "3.0.0"
    os.makedirs(tmp_path / "a" / "preprocessor" / "more")
    open(tmp_path / "a" / "preprocessor" / "more" / "stats.npz", "wb").write(b"x")   # a new preprocessor file
    assert reg.register("m", a, stage="rl").semver == "3.1.0"
    assert reg.register("other", a, stage="rl").semver == "1.0.0"                # per name
    assert reg.get("m@1.1.0").ref == "m/v4" and reg.get("m@3.1.0").ref == "m/v7"


def test_aliases_move_and_tags_touch_only_the_index(reg, src):
    v1 = reg.register("m", src, stage="rl", aliases=("champion",), tags=("baseline",))
    reg.register("m", src, stage="rl", aliases=("challenger",))
    reg.register("n", src, stage="rl", aliases=("champion",))           # aliases are per name
    assert reg.get("m@champion").ref == "m/v1" and reg.get("m@challenger").ref == "m/v2"
    files = {e.ref: reg_lib.hash_tree(e.path) for e in reg.entries()}
    mtimes = {e.ref: os.stat(os.path.join(e.path, "spec.json")).st_mtime_ns for e in reg.entries()}
    promoted = reg.promote("m/v2", "champion")
    assert promoted.aliases == ("challenger", "champion")
    assert reg.get("m@champion").ref == "m/v2" and reg.get("m/v1").aliases == ()
    assert reg.get("n@champion").ref == "n/v1"
    v3 = reg.register("m", src, stage="rl", aliases=("challenger",))    # registering with an alias moves it
    assert reg.get("m@challenger").ref == v3.ref and reg.get("m/v2").aliases == ("champion",)
    assert reg.tag("m/v1", add=("paper", "sp500"), remove=("baseline",)).tags == ("paper", "sp500")
    assert reg.get("m/v1").tags == ("paper", "sp500") and v1.tags == ("baseline",)
    assert {e.ref: reg_lib.hash_tree(e.path) for e in reg.entries() if e.ref in files} == files
    assert {r: os.stat(os.path.join(reg.get(r).path, "spec.json")).st_mtime_ns for r in mtimes} == mtimes
    with pytest.raises(RegistryError, match="'m@nobody' is not in"):
        reg.get("m@nobody")
    with pytest.raises(RegistryError, match="alias 'v2' looks like a version"):
        reg.promote("m/v1", "v2")


def test_list_filters(reg, tmp_path):
    good = fake_artifact(tmp_path / "good", metrics={"sharpe": 2.5, "max_drawdown": -0.02,
                                                     "annual_return": 0.3, "split": "test"})
    poor = fake_artifact(tmp_path / "poor", metrics={"held_out": {"sharpe": 0.1, "split": "test"}})
    enc = fake_artifact(tmp_path / "enc", metrics={"held_out": {"val_r2": 0.075, "split": "test"}})
    lucky = fake_artifact(tmp_path / "lucky", metrics={"sharpe": 2.5, "split": "val"})   # earlier, flat
    reg.register("a", good, stage="rl")                          # S
    reg.register("a", poor, stage="rl", aliases=("champion",))   # F
    reg.register("b", good, stage="ensemble")                    # S
    reg.register("e", enc, stage="pretrain")                     # A- (0.75)
    reg.register("c", lucky, stage="rl")                         # validation only: ungraded
    refs = lambda **kw: [e.ref for e in reg.list(**kw)]
    assert refs() == ["a/v1", "a/v2", "b/v1", "e/v1", "c/v1"]
    assert refs(name="a") == ["a/v1", "a/v2"] and refs(stage="ensemble") == ["b/v1"]
    assert refs(grade="S") == ["a/v1", "b/v1"] and refs(grade="F") == ["a/v2"] and refs(grade="A") == []
    assert refs(grade=">=A-") == ["a/v1", "b/v1", "e/v1"] and refs(grade=">=F") == refs()[:4]
    assert refs(grade="ungraded") == ["c/v1"]
    assert refs(alias="champion") == ["a/v2"] and refs(name="a", grade="S") == ["a/v1"]
    with pytest.raises(RegistryError, match="grade filter 'Z'"):
        reg.list(grade="Z")
    with pytest.raises(RegistryError, match="stage 'x' must be one of"):
        reg.list(stage="x")


# CHECKSUMS


def _flip_byte(path):
    data = bytearray(open(path, "rb").read())
    data[3] ^= 0x01
    open(path, "wb").write(bytes(data))


TAMPER = {
    "flip one byte": (lambda d: _flip_byte(os.path.join(d, "params.npz")), "params.npz: modified"),
    "truncate": (lambda d: open(os.path.join(d, "params.npz"), "r+b").truncate(4), "params.npz: modified"),
    "delete": (lambda d: os.remove(os.path.join(d, "preprocessor", "preprocessor.json")),
               "preprocessor/preprocessor.json: missing"),
    "add": (lambda d: open(os.path.join(d, "preprocessor", "notes.txt"), "w").write("x"),
            "preprocessor/notes.txt: extra"),
}


@pytest.mark.parametrize("how", list(TAMPER))
def test_a_changed_artifact_is_refused_naming_the_file(reg, src, how):
    reg.register("m", src, stage="rl")
    e = reg.register("m", src, stage="rl")
    assert reg.path("m/v2") == e.path and reg.verify().ok
    tamper, problem = TAMPER[how]
    tamper(e.path)
    with pytest.raises(ChecksumError, match=f"m/v2: .*{problem}") as err:
        reg.path("m/v2")
    assert isinstance(err.value, ValueError) and err.value.problems == ((problem.split(": ")[0],
                                                                         problem.split(": ")[1]),)
    with pytest.raises(ChecksumError, match=problem):
        reg.load_model("m")
    with pytest.raises(ChecksumError, match=problem):
        reg.promote("m/v2", "champion")
    report = reg.verify()
    assert report.checked == ("m/v1", "m/v2") and list(report.failures) == ["m/v2"] and not report.ok
    assert problem in report.failures["m/v2"] and reg.verify("m/v1").ok
    assert reg.path("m/v1") == os.path.join(reg.root, "m", "v1")


def test_parents_must_exist_and_pass_their_checksum(reg, src):
    enc = reg.register("enc", src, stage="pretrain", metrics={"val_r2": 0.05, "split": "val"},
                       aliases=("champion",))
    child = reg.register("ppo", src, stage="rl", parents=("enc@champion",))
    assert child.parents == ("enc/v1",)                   # the alias resolved at registration
    with pytest.raises(RegistryError, match="parent 'enc/v9' of ppo is not registered"):
        reg.register("ppo", src, stage="rl", parents=("enc/v9",))
    with pytest.raises(RegistryError, match="parent 'other' of ppo is not registered: no model named"):
        reg.register("ppo", src, stage="hybrid", parents=("enc/v1", "other"))
    _flip_byte(os.path.join(enc.path, "params.npz"))
    refused = r"parent 'enc/v1' of ppo fails its checksum \(params.npz: modified"
    with pytest.raises(RegistryError, match=refused):
        reg.register("ppo", src, stage="rl", parents=("enc/v1",))
    assert [e.ref for e in reg.entries()] == ["enc/v1", "ppo/v1"]      # nothing registered by the refusals
    assert sorted(os.listdir(os.path.join(reg.root, "ppo"))) == ["v1"]


# CONCURRENCY AND CRASHES

WORKER = """
import sys, time
from jaxtrade.pipeline.registry import Registry
root, src, name, count, worker, start = sys.argv[1:7]
while time.time() < float(start):
    time.sleep(0.001)
reg = Registry(root)
for i in range(int(count)):
    reg.register(name, src, stage="rl", tags=(f"{worker}-{i}",))
"""


def _worker(root, src, name, count, worker, start=0.0, **env):
    args = [str(root), src, name, str(count), worker, str(start)]
    return subprocess.Popen([sys.executable, "-c", WORKER, *args], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=ROOT, **env), stderr=subprocess.PIPE)


def test_two_processes_registering_at_once_lose_nothing(reg, src):
    start = time.time() + 0.5                   # both start together, after their imports
    procs = [_worker(reg.root, src, "shared", 20, w, start) for w in ("a", "b")]
    for p in procs:
        assert p.wait(timeout=60) == 0, p.stderr.read().decode()
    entries = reg.entries()
    assert sorted(e.version for e in entries) == list(range(1, 41))
    assert sorted(t for e in entries for t in e.tags) == sorted(f"{w}-{i}" for w in "ab" for i in range(20))
    for w in "ab":                                              # each worker's versions in its own order
        mine = sorted((int(e.tags[0].split("-")[1]), e.version) for e in entries if e.tags[0].startswith(w))
        assert [v for _, v in mine] == sorted(v for _, v in mine)
    assert sorted(os.listdir(os.path.join(reg.root, "shared"))) == sorted(f"v{k}" for k in range(1, 41))
    assert reg.verify().ok and not [n for n in os.listdir(reg.root) if n.startswith(".tmp-")]


def _wait_for(condition, proc, timeout=30.0):
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "the worker never reached the point to kill it at"
        time.sleep(0.01)


@pytest.mark.parametrize("point", ["after_copy", "after_rename"])
def test_a_registration_killed_midway_leaves_the_index_whole(reg, src, point):
    first = reg.register("m", src, stage="rl", aliases=("champion",))
    before = open(reg.index_path).read()
    proc = _worker(reg.root, src, "m", 1, "killed", **{reg_lib.PAUSE_ENV: f"{point}:60"})
    tmp = lambda n: os.path.join(reg.root, n)
    staged = lambda: [n for n in os.listdir(reg.root) if n.startswith(".tmp-") and os.path.isdir(tmp(n))
                      and sorted(reg_lib.hash_tree(tmp(n))) == sorted(first.files)]
    renamed = lambda: os.path.isdir(os.path.join(reg.root, "m", "v2"))
    _wait_for(staged if point == "after_copy" else renamed, proc)
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert open(reg.index_path).read() == before                   # untouched, parseable, complete
    assert reg.entries() == [first] and reg.verify().ok and [e.ref for e in reg.list()] == ["m/v1"]
    assert reg.verify().orphans == (("m/v2",) if point == "after_rename" else ())
    later = reg.register("m", src, stage="rl")
    assert later.ref == ("m/v3" if point == "after_rename" else "m/v2")   # an orphan's number is skipped
    assert [e.ref for e in reg.list()] == ["m/v1", later.ref] and reg.get("m@champion") == first
    assert not [n for n in os.listdir(reg.root) if n.startswith(".tmp-")]   # the leftover copy removed
    assert reg.verify().ok


# COMMAND LINE


def _cli(*args, root):
    return subprocess.run([sys.executable, "-m", "experiments.registry", *args], cwd=ROOT,
                          capture_output=True, text=True, env=dict(os.environ, JAXTRADE_REGISTRY=str(root)),
                          timeout=120)


def test_command_line_list_info_promote_verify(reg, tmp_path):
    enc = fake_artifact(tmp_path / "enc", metrics={"held_out": {
        "val_r2": 0.05, "directional_accuracy_edge": 0.08, "split": "test"}})
    reg.register("enc", enc, stage="pretrain")
    reg.register("ppo", fake_artifact(tmp_path / "ppo", agent="ppo"), stage="rl", parents=("enc",))
    reg.register("ppo", fake_artifact(tmp_path / "ppo2", metrics={"held_out": dict(RL, sharpe=2.0)}),
                 stage="rl")
    out = _cli("list", root=reg.root)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == [
        "ref", "semver", "stage", "agent", "grade", "score", "created", "held_out_split", "sharpe(held-out)",
        "max_dd(held-out)", "ann_ret(held-out)", "val_r2(held-out)", "dir_edge(held-out)",
        "sharpe(selection)", "max_dd(selection)", "ann_ret(selection)", "aliases", "parents"]
    assert lines[2].split()[:6] == ["ppo/v1", "1.0.0", "rl", "ppo", "B", "0.560"]   # the agent recorded
    assert lines[2].split()[8:] == ["test", "1.250", "-10.0%", "8.0%", "3.000", "-5.0%", "30.0%",
                                    "enc/v1"]   # date and time: 6, 7
    assert lines[1].split()[8:] == ["test", "0.050", "8.0%"] and lines[1].split()[:6] == [
        "enc/v1", "1.0.0", "pretrain", "-", "B+", "0.650"]
    out = _cli("list", "--stage=rl", "--grade=>=B+", root=reg.root)
    assert [x.split()[0] for x in out.stdout.splitlines()[1:]] == ["ppo/v2"] and "val_r2" not in out.stdout
    out = _cli("promote", "ppo/v1", "--alias=champion", root=reg.root)
    assert out.returncode == 0 and reg.get("ppo@champion").ref == "ppo/v1"
    out = _cli("info", "ppo@champion", root=reg.root)
    assert out.returncode == 0 and "grade:       B (score 0.560, from held-out test metrics)" in out.stdout
    assert "parents:     enc/v1" in out.stdout and "checksums:   ok" in out.stdout
    assert "sharpe = 1.25: normalized 0.500" in out.stdout
    assert "children:    ppo/v1" in _cli("info", "enc", root=reg.root).stdout
    assert _cli("verify", root=reg.root).returncode == 0
    _flip_byte(os.path.join(reg.get("ppo/v2").path, "params.npz"))
    out = _cli("verify", root=reg.root)
    assert out.returncode == 1 and "FAILED ppo/v2: " in out.stdout and "params.npz: modified" in out.stdout
    assert "ok     ppo/v1" in out.stdout and "3 entries checked, 1 failed" in out.stdout
    assert _cli("verify", "ppo/v1", root=reg.root).returncode == 0
    for args, message in [(("info", "ppo/v7"), "'ppo/v7' is not in"), (("list", "--grade=Q"), "grade filter"),
                          (("promote", "ppo/v2", "--alias=champion"), "params.npz: modified"),
                          (("promote", "ppo/v1"), "promote needs --alias")]:
        out = _cli(*args, root=reg.root)
        assert out.returncode == 2 and out.stderr.startswith("error: ") and message in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    assert _cli("frobnicate", root=reg.root).returncode == 1          # absl usage error
    flat = {k: v for k, v in RL.items() if k != "split"}      # an earlier artifact: flat, no split
    new = fake_artifact(tmp_path / "ppo3", params=b"retrained", metrics=flat)
    out = _cli("register", "ppo", new, "--stage=rl", "--parents=enc/v9", root=reg.root)
    assert out.returncode == 2 and "parent 'enc/v9' of ppo is not registered" in out.stderr
    out = _cli("register", "ppo", new, "--stage=hybrid", "--parents=enc", "--tags=x,y", "--alias=challenger",
               "--metrics_split=test", root=reg.root)
    assert out.returncode == 0 and out.stdout.startswith("ppo/v3 1.1.0 grade B (score 0.560)"), out.stderr
    e = reg.get("ppo@challenger")
    assert (e.ref, e.stage, e.parents, e.tags) == ("ppo/v3", "hybrid", ("enc/v1",), ("x", "y"))
    assert e.held_out == RL and e.selection == {}


# A REAL ARTIFACT


@pytest.fixture(scope="module")
def real_artifact(tmp_path_factory):
    """An untrained smoke-config model saved by artifact.save_model (no training: init params only)."""
    import jax

    from experiments.configs import smoke
    from jaxtrade.agents import ppo
    from jaxtrade.train import artifact, loop
    from jaxtrade.train import setup as setup_lib

    config = smoke.get_config()
    s = setup_lib.build(config)
    agent = ppo.make(config, s.env)
    spec = loop.model_spec(s, agent, {"selection": SEL, "held_out": RL}, code_version="test")
    return artifact.save_model(str(tmp_path_factory.mktemp("real") / "model"),
                               agent.init_params(jax.random.key(0), s.train_params), spec)


def test_load_model_verifies_then_loads_the_artifact(reg, real_artifact):
    import jax

    from jaxtrade.train import artifact

    e = reg.register("ppo_sp500", real_artifact, stage="rl")
    assert sorted(e.files) == ["params.npz", "preprocessor/preprocessor.json",
                               "preprocessor/preprocessor.npz", "spec.json"]
    policy, spec = reg.load_model("ppo_sp500")
    assert spec.to_json() == artifact.load_spec(real_artifact).to_json()
    jax.tree.map(np.testing.assert_array_equal, artifact.load_params(reg.path("ppo_sp500/v1")),
                 artifact.load_params(real_artifact))
    assert callable(policy.act)
    _flip_byte(os.path.join(e.path, "preprocessor", "preprocessor.npz"))
    with pytest.raises(ChecksumError, match="preprocessor/preprocessor.npz: modified"):
        reg.load_model("ppo_sp500/v1")


def test_benchmark_backtests_each_model_on_its_own_split(reg, real_artifact, tmp_path):
    from jaxtrade import eval as evaluate
    from jaxtrade.train import artifact, evaluation
    from jaxtrade.train.setup import make_split_env

    reg.register("enc", fake_artifact(tmp_path / "enc", metrics={"val_r2": 0.05, "split": "val"}),
                 stage="pretrain")
    reg.register("ppo", real_artifact, stage="rl")
    # The reference: the source artifact, loaded and backtested without the registry.
    policy, spec = artifact.load_model(real_artifact)
    md, val = evaluation.split_of(spec, "val")
    frame = evaluate.backtest(policy, *make_split_env(spec.env, val), dates=val.dates, symbols=val.symbols)
    want = evaluate.stats(frame)
    row, *base = reg_lib.benchmark(reg, split="val")         # the encoder has no policy: not benchmarked
    assert row["ref"] == "ppo/v1" and row["grade"] == "B" and row["split"] == "val"
    for k in ("sharpe", "annual_return", "max_drawdown", "turnover"):
        assert row[k] == pytest.approx(want[k], rel=1e-12), k
    assert row["split_grade"] == grade(want, "rl")[0]
    period = f"{val.traded_dates[0]:%Y-%m-%d} .. {val.traded_dates[-1]:%Y-%m-%d}"
    assert row["period"] == period and row["kind"] == "model"
    # The baselines of the same split in the model's world (its env, costs and gate), after the models.
    names = [b["ref"] for b in base]
    assert {"baseline:equal_weight_buy_hold", "baseline:min_variance", "baseline:index",
            "baseline:random"} <= set(names) and len(set(names)) == len(names)
    assert all(b["kind"] == "baseline" and b["split"] == "val" and b["period"] == period for b in base)
    (ew,) = evaluate.baselines(*make_split_env(spec.env, val), val, include={"equal_weight_buy_hold"},
                               history=evaluation.baseline_history(md, val))["equal_weight_buy_hold"]
    assert base[names.index("baseline:equal_weight_buy_hold")]["sharpe"] == pytest.approx(
        evaluate.stats(ew)["sharpe"], rel=1e-12)
    with pytest.raises(RegistryError, match="enc/v1 is a pretrained encoder"):
        reg_lib.benchmark(reg, ["enc"], split="val")
    out = _cli("benchmark", "ppo", "--split=val", root=reg.root)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"split: val ({period})" and lines[1].split() == [
        "ref", "grade", "split_grade", "sharpe", "annual_return", "max_drawdown", "turnover"]
    assert lines[2].split() == ["ppo/v1", "B", row["split_grade"], f"{want['sharpe']:.3f}",
                                f"{100 * want['annual_return']:.1f}%", f"{100 * want['max_drawdown']:.1f}%",
                                f"{want['turnover']:.3f}"]
    assert [line.split()[0] for line in lines[3:3 + len(base)]] == [b["ref"] for b in base]


def test_readme_grading_table_is_the_codes():
    readme = open(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                               "README.md"), encoding="utf-8").read()
    assert reg_lib.grading_table().strip() in readme, "README's grading table differs from grading_table()"


def test_selection_metrics_never_grade(reg, tmp_path):
    """The best of many validation checkpoints of a model with no skill shows a validation Sharpe of
    ~1.6 by selection alone (A- on validation); only held-out metrics grade, and a model without them
    is registered ungraded. An index written by the earlier format (val-graded) reads back ungraded."""
    lucky = {"sharpe": 1.63, "max_drawdown": -0.08, "annual_return": 0.18, "split": "val"}
    assert grade(lucky, "rl")[0] == "A-"                      # what the old registry recorded
    e = reg.register("m", fake_artifact(tmp_path / "m", metrics={"selection": lucky}), stage="rl")
    assert (e.grade, e.score, e.held_out, e.selection) == ("ungraded", None, {}, lucky)
    e = reg.register("m", fake_artifact(tmp_path / "m2", metrics={"selection": lucky, "held_out": dict(
        lucky, sharpe=0.1, annual_return=-0.02, max_drawdown=-0.3, split="test")}), stage="rl")
    assert e.grade == "F" and e.selection["sharpe"] == 1.63
    index = json.load(open(reg.index_path))
    old = dict(index["entries"][0], metrics=lucky, metrics_split="val", grade="A-", score=0.72)
    for k in ("selection", "held_out", "trials"):
        old.pop(k)
    with open(reg.index_path, "w") as f:
        json.dump({"format": "jaxtrade-registry/1", "entries": [old]}, f)
    (back,) = Registry(reg.root).entries()
    assert (back.grade, back.score, back.selection["sharpe"], back.held_out) == ("ungraded", None, 1.63, {})
