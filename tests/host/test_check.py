"""`ainit check`, `ainit import legacy` and `ainit export compose` on the real
seed-era files (../shared/fixtures/seed-era, unmodified copies of the legacy
configs; see SOURCE.md there): every known defect is reported at its real
line, and the shipped configs/mainpc.yaml and configs/pc2.yaml check clean."""
import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml

from conftest import AINIT, ROOT

SEED = Path(os.environ.get("AINIT_SEED_ERA") or ROOT.parent / "shared" / "fixtures" / "seed-era")
LINE = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): "
                  r"(?P<sev>error|warning|note): (?P<msg>.*?)(?: \[(?P<rule>[a-z0-9-]+)\])?$")

needs_seed = pytest.mark.skipif(not SEED.is_dir(), reason=f"seed-era fixtures not found at {SEED}")


def check(*files, cwd=None):
    r = subprocess.run([AINIT, "check", *map(str, files)], capture_output=True, text=True,
                       cwd=cwd, timeout=60)
    diags, last = [], None
    for ln in r.stderr.splitlines():
        m = LINE.match(ln)
        if not m:
            continue
        d = dict(m.groupdict(), line=int(m["line"]), col=int(m["col"]))
        if d["sev"] == "note" and last is not None and d["rule"] is None:
            last["note"] = d
            continue
        d["note"] = None
        diags.append(d)
        last = d
    assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r.returncode, diags, r.stderr


def at(diags, file, line, rule):
    hits = [d for d in diags if d["file"].endswith(file) and d["line"] == line and d["rule"] == rule]
    assert hits, f"no [{rule}] at {file}:{line}; got:\n" + "\n".join(
        f"{d['file']}:{d['line']}: {d['rule']}: {d['msg']}" for d in diags if d["file"].endswith(file))
    return hits[0]


def rules(diags, file=None):
    return Counter(d["rule"] for d in diags if file is None or d["file"].endswith(file))


@needs_seed
def test_mainpc_startup():
    rc, d, err = check("mainpc/startup_config.yaml", cwd=SEED)
    assert rc == 1, err
    f = "mainpc/startup_config.yaml"
    # the four duplicate ports, each with a note at the other end
    for line, other, text in [(261, 53, "7220 of ModelEvaluationFramework is already the port of SystemDigitalTwin"),
                              (276, 39, "7200 of LearningOpportunityDetector is already the port of ServiceRegistry"),
                              (311, 268, "7210 of ModelOrchestrator is already the port of LearningOrchestrationService"),
                              (269, 92, "7211 of LearningOrchestrationService is already the port of ModelManagerSuite")]:
        x = at(d, f, line, "port-collision")
        assert text in x["msg"]
        assert x["note"]["line"] == other
    # the four agents that follow neither health-port rule
    for line, agent in [(82, "ObservabilityHub"), (262, "ModelEvaluationFramework"),
                        (269, "LearningOrchestrationService"), (277, "LearningOpportunityDetector")]:
        assert agent in at(d, f, line, "health-port-rule")["msg"]
    cyc = at(d, f, 421, "dependency-cycle")
    assert ("TTSService -> StreamingInterruptHandler (line 421) -> StreamingTTSAgent (line 445)"
            " -> TTSService (line 464)") in cyc["msg"]
    at(d, f, 542, "empty-group")
    assert rules(d) == Counter({"port-collision": 4, "health-port-rule": 4, "dependency-cycle": 1,
                                "empty-group": 1})


@needs_seed
def test_mainpc_with_container_groups():
    rc, d, err = check("mainpc/startup_config.yaml", "mainpc/container_groups.yaml", cwd=SEED)
    assert rc == 1, err
    g = "mainpc/container_groups.yaml"
    missing = [8, 12, 14, 15, 19, 20, 21, 22, 23, 27, 28, 29, 30, 37, 38, 39]
    for line in missing:
        at(d, g, line, "grouping-unknown-agent")
    assert rules(d, g)["grouping-unknown-agent"] == 16
    x = at(d, g, 26, "grouping-group-mismatch")
    assert "ChainOfThoughtAgent in reasoning_services" in x["msg"]
    for line in (493, 189, 258, 222, 542):  # startup groups absent from the grouping
        at(d, "mainpc/startup_config.yaml", line, "grouping-group-mismatch")
    assert rules(d)["ungrouped-agent"] == 45


@needs_seed
def test_pc2_startup():
    rc, d, err = check("pc2/startup_config.yaml", cwd=SEED)
    assert rc == 1, err
    f = "pc2/startup_config.yaml"
    dup = at(d, f, 283, "duplicate-agent")
    assert "MemoryOrchestratorService" in dup["msg"] and dup["note"]["line"] == 8
    at(d, f, 288, "health-port-rule")
    assert at(d, f, 288, "port-range")["note"]["line"] == 278
    bus = at(d, f, 293, "port-collision")
    assert "error_bus_port 7150" in bus["msg"] and "VisionProcessingAgent" in bus["msg"]
    assert bus["note"]["line"] == 56
    at(d, f, 254, "env-expansion")
    assert "26 flow mappings end with a trailing comma" in at(d, f, 14, "flow-style")["msg"]
    assert "Removed HealthMonitor dependency" in at(d, f, 164, "flow-style")["msg"]
    assert "Removed SystemHealthManager dependency" in at(d, f, 238, "flow-style")["msg"]
    # no cycle and every dependency defined
    assert not rules(d)["dependency-cycle"] and not rules(d)["undefined-dependency"]


@needs_seed
def test_pc2_with_both_groupings():
    rc, d, err = check("pc2/startup_config.yaml", "pc2/container_grouping.yaml",
                       "pc2/container_groups.yaml", cwd=SEED)
    assert rc == 1, err
    g, s = "pc2/container_grouping.yaml", "pc2/startup_config.yaml"
    for line in (9, 34, 39, 159):  # ErrorBus, NLLBTranslator, BergamotTranslator, TutoringServiceAgent
        at(d, g, line, "grouping-unknown-agent")
    eb = at(d, g, 11, "port-collision")
    assert "ErrorBus" in eb["msg"] and eb["note"]["file"].endswith(s) and eb["note"]["line"] == 56
    assert at(d, g, 21, "grouping-mismatch")["note"]["line"] == 161   # SystemHealthManager 7121 vs 7117
    assert at(d, g, 155, "grouping-mismatch")["note"]["line"] == 74   # UnifiedMemoryReasoningAgent script
    for line in (167, 177, 182, 187):                                  # required: false vs true
        at(d, g, line, "grouping-mismatch")
    ung = {(x["file"].split("/")[-1], x["line"]) for x in d if x["rule"] == "ungrouped-agent"}
    assert ("startup_config.yaml", 53) in ung   # VisionProcessingAgent, not in container_grouping
    assert ("startup_config.yaml", 91) in ung   # TutoringAgent
    assert ("startup_config.yaml", 8) in ung    # MemoryOrchestratorService, not in container_groups
    at(d, "pc2/container_groups.yaml", 39, "grouping-unknown-agent")  # TutoringServiceAgent
    assert rules(d)["conflicting-groupings"] == 1


@needs_seed
def test_mainpc_later():
    rc, d, err = check("mainpc-later/startup_config.yaml", cwd=SEED)
    assert rc == 1, err
    f = "mainpc-later/startup_config.yaml"
    assert "quoted" not in at(d, f, 62, "port-expression")["msg"]
    assert "quoted" in at(d, f, 473, "port-expression")["msg"]
    for line in (475, 482, 490, 499, 518, 527):
        assert "string expression" in at(d, f, line, "bad-value")["msg"]
    for line in (142, 152, 166, 291, 611):
        assert "UnifiedObservabilityCenter" in at(d, f, line, "undefined-dependency")["msg"]
    for line in (612, 626, 630, 645, 649, 661, 667, 672, 684, 692, 696, 700, 704):
        at(d, f, line, "legacy-structure")
    at(d, f, 139, "health-port-rule")
    at(d, f, 608, "health-port-rule")
    assert at(d, f, 169, "port-collision")["note"]["line"] == 161   # grpc_port = its own port
    assert at(d, f, 170, "port-collision")["note"]["line"] == 162   # rest_port = its health port
    assert rules(d)["port-collision"] == 2   # none among port/health_check_port themselves
    assert rules(d)["dependency-cycle"] == 0


@needs_seed
def test_pc2_port_registry():
    rc, d, err = check("pc2/PORT_REGISTRY.md", "pc2/startup_config.yaml", cwd=SEED)
    assert rc == 1, err
    r = "pc2/PORT_REGISTRY.md"
    x = at(d, r, 36, "port-collision")       # health port 8100 twice
    assert "SystemDigitalTwin" in x["msg"] and "TieredResponder" in x["msg"] and x["note"]["line"] == 16
    assert "follows only 81xx" in at(d, r, 36, "health-port-rule")["msg"]   # 7120 -> 8100
    for line in (22, 23, 25, 26, 33, 36, 37, 41):  # not in startup_config
        at(d, r, line, "registry-unknown-agent")
    tut = [x for x in d if x["rule"] == "registry-mismatch" and x["line"] == 24]
    assert any("7108 here but 7131" in x["msg"] for x in tut)            # TutoringAgent
    assert any("TutorAgent" in x["msg"] and x["note"]["line"] == 85 for x in tut)
    assert "SystemHealthManager" in [x for x in d if x["rule"] == "registry-mismatch" and x["line"] == 33][0]["msg"]
    unreg = {x["line"] for x in d if x["rule"] == "unregistered-agent"}
    assert unreg == {8, 53, 82, 158}  # MemoryOrchestratorService, VisionProcessingAgent, TutorAgent, SystemHealthManager


def test_shipped_configs_are_clean():
    for args in (["configs/mainpc.yaml"], ["configs/pc2.yaml"], ["configs/mainpc.yaml", "configs/pc2.yaml"]):
        rc, d, err = check(*args, cwd=ROOT)
        assert rc == 0, err
        assert not [x for x in d if x["sev"] == "error"], err
        # warnings allowed only for what the host lacks (no GPU here)
        assert {x["rule"] for x in d} <= {"gpu-missing"}, err


def test_pc2_remote_dependency_resolves_only_against_mainpc(tmp_path):
    bad = (ROOT / "configs/pc2.yaml").read_text().replace('"mainpc:ServiceRegistry"', '"mainpc:ServiceRegistri"')
    p = tmp_path / "pc2.yaml"
    p.write_text(bad)
    rc, d, err = check(ROOT / "configs/mainpc.yaml", p)
    assert rc == 1
    x = [x for x in d if x["rule"] == "undefined-remote-dependency"]
    assert x and 'did you mean "ServiceRegistry"' in x[0]["msg"], err


def test_exit_codes(tmp_path):
    assert check(tmp_path / "missing.yaml")[0] == 2
    r = subprocess.run([AINIT, "check"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr
    garbage = tmp_path / "g.yaml"
    garbage.write_bytes(b"\x00\xff\xfe{{{[\n")
    assert check(garbage)[0] == 1


@needs_seed
def test_import_round_trip(tmp_path):
    out = tmp_path / "mainpc.yaml"
    r = subprocess.run([AINIT, "import", "legacy", "mainpc/startup_config.yaml", "-o", str(out)],
                       capture_output=True, text=True, cwd=SEED, timeout=60)
    assert r.returncode == 0, r.stderr
    # unmapped items are reported at their legacy lines
    assert re.search(r"^mainpc/startup_config.yaml:43:7: warning: config of ServiceRegistry", r.stderr, re.M)
    doc = yaml.safe_load(out.read_text())
    agents = {n: a for g in doc["groups"].values() for n, a in g["agents"].items()}
    assert len(agents) == 58
    assert agents["ServiceRegistry"]["command"] == ["python3", "/opt/ai/main_pc_code/agents/service_registry_agent.py"]
    assert agents["SystemDigitalTwin"]["port"] == 7220
    assert agents["SystemDigitalTwin"]["health"] == {"zmq": 8220}
    assert agents["SystemDigitalTwin"]["depends_on"] == ["ServiceRegistry"]
    assert "# mainpc/startup_config.yaml:51\n      SystemDigitalTwin:" in out.read_text()
    rc, d, err = check(out)
    assert rc == 1
    assert rules(d)["port-collision"] == 4 and rules(d)["dependency-cycle"] == 1, err


def test_export_compose(tmp_path):
    out = tmp_path / "compose.yml"
    r = subprocess.run([AINIT, "export", "compose", str(ROOT / "configs/mainpc.yaml"), "-o", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(out.read_text())
    cfg = yaml.safe_load((ROOT / "configs/mainpc.yaml").read_text())
    n = sum(len(g["agents"]) for g in cfg["groups"].values())
    assert len(doc["services"]) == n
    sr = doc["services"]["service-registry"]
    assert sr["labels"]["ai.ainit.group"] == "core-services"
    assert sr["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert sr["healthcheck"]["test"][0] == "CMD"
    twin = doc["services"]["system-digital-twin"]
    assert twin["depends_on"]["service-registry"] == {"condition": "service_healthy"}
    gpu = doc["services"]["model-manager-agent"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["count"] == "all" and gpu["capabilities"] == ["gpu"]
    assert set(doc["volumes"]) >= {"logs", "data", "models", "redis_data"}


def test_run_refuses_what_check_rejects(tmp_path):
    """The supervisor runs the same rules after loading and refuses the config."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("version: 1\ndefaults: {user: root}\ngroups:\n  g:\n    agents:\n"
                   "      a: {command: [sleep, \"60\"], port: 7220}\n"
                   "      b: {command: [sleep, \"60\"], port: 7220, depends_on: [c]}\n"
                   "      c: {command: [sleep, \"60\"], depends_on: [b]}\n")
    rc, d, err = check(cfg)
    assert rc == 1
    r = subprocess.run([AINIT, "run", "--config", str(cfg), "--state-dir", str(tmp_path / "st")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r.stderr
    assert re.search(r"c\.yaml:7:\d+: error: port 7220 of b is already the port of a \[port-collision\]", r.stderr)
    assert "[dependency-cycle]" in r.stderr
