"""docs/*.[18]: the man pages. Every page renders without a groff warning;
every command the binary's usage names has its page docs/ainit-CMD.N; every
ctl command (the CLI's usage and the server's table in init/ctl.c) is
documented in ainit-ctl.8; every option and subcommand word a usage text
prints is on its command's page. Quick and deterministic: the binary is only
asked for its usage texts."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import AINIT, ROOT

DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.iterdir() if re.fullmatch(r"[a-z-]+\.[18]", p.name))
COMMAND_SECTIONS = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "EXAMPLES",
                    "SEE ALSO"]
OVERVIEW_SECTIONS = ["NAME", "SYNOPSIS", "DESCRIPTION", "AGENT STATES", "SIGNALS",
                     "ENVIRONMENT", "FILES", "SEE ALSO"]


def usage(*args):
    """What `ainit ARGS` prints (stdout and stderr): a usage text."""
    r = subprocess.run([AINIT, *args], capture_output=True, text=True, timeout=30)
    out = r.stdout + r.stderr
    assert "usage:" in out, f"ainit {' '.join(args)} printed no usage (rc {r.returncode}): {out!r}"
    return out


def top_level_commands():
    """The commands `ainit --help` lists: `  NAME ...` lines."""
    out = usage("--help")
    cmds = re.findall(r"^  ([a-z]+) ", out, re.M)
    assert len(cmds) >= 7, out
    return out, sorted(set(cmds))


def sections(page: Path):
    """{section title: roff source lines} of a page."""
    out, cur = {}, None
    for line in page.read_text().splitlines():
        m = re.match(r'\.SH\s+"?([^"]*)"?\s*$', line)
        if m:
            cur = m.group(1).strip()
            assert cur not in out, f"{page.name}: section {cur} twice"
            out[cur] = []
        elif cur is not None:
            out[cur].append(line)
    return out


def plain(roff: str) -> str:
    """A roff line's words without macros, font escapes, quotes."""
    s = re.sub(r"^\.[A-Z]{1,2}\s*", "", roff)
    s = re.sub(r"\\f[BIRP]", "", s)
    s = s.replace("\\-", "-").replace("\\&", "").replace('"', "")
    return s


def page_of(cmd: str) -> Path:
    found = [p for p in PAGES if p.stem == f"ainit-{cmd}"]
    assert len(found) == 1, f"command {cmd!r}: want exactly one docs/ainit-{cmd}.[18], have {found}"
    return found[0]


def options_in(text: str):
    """-x and --long options in a usage text (not words like docker-compose)."""
    return set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", text))


def roff_has_option(src: str, opt: str) -> bool:
    return re.search(r"(?<![\w\\-])" + re.escape(opt.replace("-", "\\-")) + r"(?![\w\\-])",
                     src) is not None


def test_pages_render_without_warnings():
    groff = shutil.which("groff")
    if not groff:
        pytest.fail("groff is not installed: `make deps` (mk/deps.sh installs groff-base)")
    assert PAGES, "no man pages in docs/"
    for page in PAGES:
        raw = page.read_bytes()
        assert raw.isascii(), f"{page.name}: non-ASCII bytes (write \\(em, \\(aq, ...)"
        r = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", str(page)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and not r.stderr, f"{page.name}: groff says:\n{r.stderr}"


def test_pages_have_their_sections_and_names():
    for page in PAGES:
        secs = sections(page)
        th = re.search(r"^\.TH\s+(\S+)\s+(\d)", page.read_text(), re.M)
        assert th, f"{page.name}: no .TH"
        assert th.group(1).replace("\\-", "-") == page.stem.upper(), f"{page.name}: .TH {th.group(1)}"
        assert th.group(2) == page.suffix[1:], f"{page.name}: .TH section {th.group(2)}"
        name = " ".join(plain(l) for l in secs.get("NAME", []))
        assert name.startswith(f"{page.stem} - "), f"{page.name}: NAME is {name!r}"
        want = OVERVIEW_SECTIONS if page.stem == "ainit" else COMMAND_SECTIONS
        missing = [s for s in want if s not in secs]
        assert not missing, f"{page.name}: missing sections {missing}"


def test_every_command_has_a_page_and_every_page_a_command():
    _, cmds = top_level_commands()
    pages = {page_of(c) for c in cmds}
    overview = DOCS / "ainit.8"
    assert overview in PAGES
    stale = set(PAGES) - pages - {overview}
    assert not stale, f"pages for no command of `ainit --help`: {sorted(p.name for p in stale)}"
    # The overview points at every page, in SYNOPSIS and in SEE ALSO.
    secs = sections(overview)
    for part in ("SYNOPSIS", "SEE ALSO"):
        text = "\n".join(secs[part])
        for p in pages:
            ref = f".BR {p.stem.replace('-', chr(92) + '-')} ({p.suffix[1:]})"
            assert ref in text, f"ainit.8 {part} does not point at {p.name} ({ref!r})"


def test_see_also_and_docs_references_exist():
    names = {p.stem: p.suffix[1:] for p in PAGES}
    for page in PAGES:
        src = page.read_text()
        for name, sec in re.findall(r"\.BR\s+(ainit[\w\\-]*)\s+\((\d)\)", src):
            name = name.replace("\\-", "-")
            assert names.get(name) == sec, f"{page.name}: {name}({sec}) is not a page here"
        for doc in set(re.findall(r"docs/[\w.-]+\.md", src)):
            assert (ROOT / doc).is_file(), f"{page.name}: {doc} does not exist"


def documented_ctl_commands():
    """The tags of the COMMANDS section of ainit-ctl.8 (not nested lists)."""
    lines = sections(DOCS / "ainit-ctl.8")["COMMANDS"]
    verbs, depth = set(), 0
    for i, line in enumerate(lines):
        if line.startswith(".RS"):
            depth += 1
        elif line.startswith(".RE"):
            depth -= 1
        elif line.startswith(".TP") and depth == 0:
            for tok in plain(lines[i + 1]).split():
                if tok == "|":
                    continue
                if not re.fullmatch(r"[a-z]+", tok):
                    break
                verbs.add(tok)
    return verbs


def test_every_ctl_command_is_documented():
    out = usage("ctl", "--help")
    body = out.split("commands:", 1)[1].split("\nsocket:", 1)[0]
    cli = set()
    for line in body.splitlines():
        if re.match(r"  [a-z]", line):
            head = re.split(r"\s{2,}", line.strip())[0]
            cli |= set(re.findall(r"(?<![\w-])[a-z]+(?![\w-])", head))
    server = set(re.findall(r'\{"([a-z]+)",\s*(?:true|false),\s*cmd_\w+\}',
                            (ROOT / "init" / "ctl.c").read_text()))
    assert server, "the command table of init/ctl.c was not found"
    assert cli == server, f"`ainit ctl --help` and the server differ: {sorted(cli ^ server)}"
    documented = documented_ctl_commands()
    assert cli <= documented, f"ctl commands not in ainit-ctl.8 COMMANDS: {sorted(cli - documented)}"
    assert documented <= cli, f"ainit-ctl.8 documents unknown commands: {sorted(documented - cli)}"
    synopsis = " ".join(plain(l) for l in sections(DOCS / "ainit-ctl.8")["SYNOPSIS"])
    missing = [v for v in cli if not re.search(rf"\b{v}\b", synopsis)]
    assert not missing, f"ctl commands not in the SYNOPSIS of ainit-ctl.8: {missing}"


# Each command's usage texts: --help where it has one, else bad usage.
USAGES = {
    "run": [("run", "--help")],
    "check": [("check", "--help")],
    "import": [("import",)],
    "export": [("export",), ("export", "oci")],
    "ctl": [("ctl", "--help")],
    "sandbox": [("sandbox", "--help")],
    "gpu": [("gpu", "--help")],
}


def test_usage_options_and_words_are_on_the_pages():
    help_text, cmds = top_level_commands()
    assert sorted(USAGES) == cmds, "a new command: add its usage invocations to USAGES"
    for cmd in cmds:
        page = page_of(cmd)
        src = page.read_text()
        texts = [usage(*a) for a in USAGES[cmd]]
        texts += re.findall(rf"^  {cmd} .*$", help_text, re.M)
        opts = set().union(*(options_in(t) for t in texts)) - {"-h", "--help"}
        missing = sorted(o for o in opts if not roff_has_option(src, o))
        assert not missing, f"{page.name}: options of the usage not on the page: {missing}"
        synopsis = " ".join(plain(l) for l in sections(page)["SYNOPSIS"])
        words = set()
        for t in texts:
            for line in t.splitlines():
                if line.startswith("usage:") or re.match(r"\s+ainit ", line) or line.startswith("  " + cmd):
                    head = re.split(r"\s{2,}", line.replace("usage:", "").strip())[0]
                    words |= set(re.findall(r"(?<![\w$/.-])[a-z]+(?![\w.-])", head))
        words -= {"ainit"}
        missing = sorted(w for w in words if not re.search(rf"\b{w}\b", synopsis))
        assert not missing, f"{page.name}: SYNOPSIS lacks {missing}"
