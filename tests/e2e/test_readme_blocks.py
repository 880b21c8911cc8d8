"""The runtime and example READMEs work as pasted, and a few docs say what
the daemon does.

Every ```bash block of runtimes/*/README.md and examples/*/README.md runs in
bash against this module's daemon (127.0.0.1:8080 replaced by its port),
from the folder its README says (the repository root; runtimes/c's block
also from examples/c-hello), in a scratch copy of the files they read so
nothing is written into the checkout. `curl` is wrapped with
--fail-with-body, so an HTTP error fails the block, and a line `# text`
after a command is output the block must print. A block for a runtime
this machine cannot run is skipped, as the runtimes' own tests are.

docs/quickstart.md's blocks are run by test_quickstart.py.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import REPO

DOC_ADDR = "127.0.0.1:8080"
READMES = sorted(REPO.glob("runtimes/*/README.md")) + sorted(REPO.glob("examples/*/README.md"))
# Where each README's blocks run from, relative to the repository root.
EXTRA_CWDS = {"runtimes/c/README.md": ["examples/c-hello"]}


def bash_blocks(path):
    return re.findall(r"^```(?:bash|sh)\n(.*?)^```", path.read_text(), re.S | re.M)


def block_cases():
    cases = []
    for readme in READMES:
        rel = str(readme.relative_to(REPO))
        for i, block in enumerate(bash_blocks(readme)):
            for cwd in ["."] + EXTRA_CWDS.get(rel, []):
                cases.append(pytest.param(rel, i, cwd, id="%s#%d@%s" % (rel, i, cwd)))
    return cases


def test_the_readmes_have_blocks_to_run():
    names = {c.values[0] for c in block_cases()}
    assert "runtimes/c/README.md" in names, names
    assert {"examples/%s/README.md" % d.name for d in REPO.glob("examples/*")} <= names, names
    # Each example says where its block runs from (the test runs it there).
    for readme in REPO.glob("examples/*/README.md"):
        assert "from the repository root" in " ".join(readme.read_text().split()).lower(), readme


@pytest.fixture(scope="module")
def workspace():
    """A scratch copy of what the blocks read (include/, examples/), made a
    git repository as a checkout is, and a PATH whose curl fails on errors, with
    hearth (the CLI) on it."""
    work = Path(tempfile.mkdtemp(prefix="hearth-e2e-readmes-"))
    repo = work / "hearth"
    for part in ("include", "examples"):
        shutil.copytree(REPO / part, repo / part,
                        ignore=shutil.ignore_patterns("*.so", "*.tar.gz", "*.o"))
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shim = work / "bin"
    shim.mkdir()
    real = shutil.which("curl")
    assert real, "curl is needed for the README blocks"
    (shim / "curl").write_text("#!/bin/sh\nexec %s --fail-with-body \"$@\"\n" % real)
    (shim / "curl").chmod(0o755)
    cli = os.environ.get("HEARTH_CLI") or str(REPO / "build" / "hearth")
    assert os.access(cli, os.X_OK), "hearth (the CLI) not found at %s (set HEARTH_CLI)" % cli
    (shim / "hearth").symlink_to(cli)
    yield repo, "%s:%s" % (shim, os.environ.get("PATH", "/usr/bin:/bin"))
    shutil.rmtree(work, ignore_errors=True)


def usable_runtimes(hearth):
    return {r["name"] for r in hearth.get("/v1/runtimes").json()["runtimes"] if r["usable"]}


@pytest.mark.parametrize("readme, index, cwd", block_cases())
def test_readme_block_works_as_pasted(hearth, workspace, readme, index, cwd):
    repo, path = workspace
    block = bash_blocks(REPO / readme)[index]
    assert "localhost" not in block, "use 127.0.0.1 in the READMEs"
    needs = set(re.findall(r"[?&]runtime=([a-z0-9]+)", block))
    if needs - usable_runtimes(hearth):
        pytest.skip("runtime %s is not usable on this machine" % sorted(needs))
    script = block.replace(DOC_ADDR, "127.0.0.1:%d" % hearth.port)
    env = dict(os.environ, PATH=path, HEARTH_TOKEN=hearth.token, HEARTH_URL=hearth.url(""),
               HEARTH_CONFIG=os.devnull)
    p = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=repo / cwd, env=env,
                       capture_output=True, timeout=120)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, "%s block %d failed from %s (exit %d):\n%s\nstdout:\n%s\nstderr:\n%s" % (
        readme, index, cwd, p.returncode, block, out, p.stderr.decode(errors="replace"))
    for want in re.findall(r"^# (.+)$", block, re.M):
        assert want in out, "%s block %d: %r not in the output:\n%s" % (readme, index, want, out)


# --- docs that describe the daemon ---


def documented_function_object():
    text = (REPO / "docs" / "api.md").read_text()
    section = text[text.index("### The function object"):]
    return json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))


def test_function_object_in_api_md_has_every_field(hearth):
    """docs/api.md's function object shows every field the daemon answers
    with (keep_alive was once missing), and no field it does not."""
    hearth.deploy_ok("rb-object", "def handler(e, c):\n    return 1\n")
    shown = hearth.show("rb-object").json()
    doc = documented_function_object()
    assert set(shown) == set(doc), "undocumented: %s; documented but absent: %s" % (
        sorted(set(shown) - set(doc)), sorted(set(doc) - set(shown)))
    assert set(shown["pool"]) <= set(doc["pool"]), (shown["pool"], doc["pool"])


def test_runtimes_md_names_the_runtimes_with_a_template():
    """docs/runtimes.md says which runtimes start from a template: the rows
    of src/runtimes.c that name one."""
    src = (REPO / "src" / "runtimes.c").read_text()
    rows = re.split(r"\.info = \{", src)[1:]  # one per runtime, up to the next
    with_template = {re.match(r'\.name = "([a-z0-9]+)"', row).group(1)
                     for row in rows if ".template = " in row.split("\n    },")[0]}
    assert with_template >= {"python3"}, with_template
    text = (REPO / "docs" / "runtimes.md").read_text()
    sentence = re.search(r"Runtimes with a template: ([^.]*)\.", text)
    assert sentence, "docs/runtimes.md no longer lists the runtimes with a template"
    assert set(re.findall(r"`([a-z0-9]+)`", sentence.group(1))) == with_template, (
        sentence.group(0), with_template)


def test_quickstart_i_call_is_described_as_warm(hearth, workspace):
    """docs/quickstart.md's `curl -i` call follows the first call, so its
    worker is warm: the text says so, and its headers agree."""
    text = (REPO / "docs" / "quickstart.md").read_text()
    m = re.search(r"\n\n((?:(?!\n\n).)*`-i`(?:(?!```).)*)```bash\n([^`]*?\s-i\s[^`]*?/invoke[^`]*?)```",
                  text, re.S)
    assert m, "docs/quickstart.md no longer shows an invoke with -i"
    prose, block = m.group(1), m.group(2)
    assert "warm" in prose and "no such header" in prose, prose
    hearth.deploy_ok("hello", "def handler(e, c):\n    return {}\n")
    hearth.invoke_ok("hello", json={})  # the quick start's call before it
    _, path = workspace
    env = dict(os.environ, PATH=path, HEARTH_TOKEN=hearth.token, HEARTH_URL=hearth.url(""),
               HEARTH_CONFIG=os.devnull)
    p = subprocess.run(["bash", "-e", "-c", block.replace(DOC_ADDR, "127.0.0.1:%d" % hearth.port)],
                       env=env, capture_output=True, timeout=60)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, (out, p.stderr)
    headers = out.lower()
    assert "x-request-id:" in headers and "x-hearth-function-version:" in headers, out
    assert "x-hearth-cold-start" not in headers, out


# The error a Python handler's `raise ValueError("boom")` gets, as the docs
# show it; each file must still show it, and the daemon must answer it.
BOOM_DOCS = ["docs/api.md", "docs/quickstart.md", "runtimes/python3/README.md"]
BOOM_SHOWN = re.compile(r'\{"error": \{"code": "function_error"[^\n`]*?\}\}')


def test_docs_show_the_error_a_raising_handler_gets(hearth):
    """Every doc that shows a handler's `ValueError("boom")` shows the JSON
    the daemon answers with (they once disagreed on `message`)."""
    hearth.deploy_ok("rb-boom", 'def handler(e, c):\n    raise ValueError("boom")\n')
    r = hearth.invoke("rb-boom", json={})
    assert r.status_code == 500, r.text
    for doc in BOOM_DOCS:
        shown = BOOM_SHOWN.findall((REPO / doc).read_text())
        assert shown, "%s no longer shows a function_error answer" % doc
        for text in shown:
            assert json.loads(text) == r.json(), (doc, text, r.text)


def deployed_names(text):
    """Function names a doc deploys: `--name N`, a PUT to /v1/functions/N,
    or `hearth deploy DIR` without --name (the folder's name)."""
    text = text.replace("\\\n", " ")  # one line per command
    names = set(re.findall(r"--name[ =]([A-Za-z0-9_-]+)", text))
    names |= set(re.findall(r"PUT\b[^\n]*?/v1/functions/([A-Za-z0-9_-]+)", text))
    for line in re.findall(r"^\s*hearth deploy\b([^\n]*)$", text, re.M):
        if "--name" not in line:
            args = line.split()
            if args and not args[0].startswith("-"):
                names.add(Path(args[0]).name)
    return names - {"", "."}


def test_no_readme_deploys_over_the_quick_start_function():
    """A README pasted after the quick start must not silently replace its
    function (runtimes/c's once deployed `hello` too)."""
    quick = deployed_names((REPO / "README.md").read_text())
    quick |= deployed_names((REPO / "docs" / "quickstart.md").read_text())
    assert "hello" in quick, quick
    for readme in READMES:
        clash = deployed_names(readme.read_text()) & quick
        assert not clash, "%s deploys %s, the quick start's" % (readme.relative_to(REPO), clash)
