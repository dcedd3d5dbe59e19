"""The documentation: the site builds with warnings as errors, a browser reads its pages, the spec
reference lists what the registries hold, and the guide's code blocks and spec fragments run.

The site is built once per session into a temporary folder (``sphinx-build -W --keep-going -n``,
as ``.ci/run`` does; about 30 s), or taken from ``PGTORCHRL_DOCS_SITE`` where ``.ci/run`` has just
built it, then served on 127.0.0.1 and read in headless Chromium.
"""

from __future__ import annotations

import copy
import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from chromium import rendered

from pgtorchrl.cli import main as cli_main
from pgtorchrl.components import REGISTRIES, TRANSFORMS
from pgtorchrl.pipeline.parse import load_spec
from pgtorchrl.pipeline.reference import component_sections, fixed_sections, top_level_fields

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GUIDE = sorted((DOCS / "guide").glob("*.md"))
BASE_SPEC = ROOT / "pipelines" / "vpg_cartpole.yaml"


def blocks(path: Path, language: str) -> list[str]:
    """The fenced code blocks of one language in a Markdown file, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", path.read_text(), flags=re.S | re.M)


# --- the site ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The site built with warnings as errors: the one ``.ci/run`` has just built from this checkout
    (``PGTORCHRL_DOCS_SITE``, its output folder: the same command, 40 s saved), else built here."""
    built = os.environ.get("PGTORCHRL_DOCS_SITE")
    if built:
        return ROOT / built
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-W", "--keep-going", "-n", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


@pytest.fixture(scope="session")
def served(site):
    """The built site on http://127.0.0.1:PORT (the search page's index loads as on a real host)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.RequestHandlerClass.log_message = lambda *a, **k: None  # quiet
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_the_site_has_every_guide_reference_and_benchmark_page(site):
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    expected = {f"guide/{p.stem}.html" for p in GUIDE} | {
        "index.html",
        "reference/api.html",
        "reference/spec.html",
        "benchmarks/mujoco.html",
        "benchmarks/textbook.html",
        "benchmarks/spaces-memory.html",
        "benchmarks/speed.html",
        "changelog.html",
        "search.html",
        "reference/generated/pgtorchrl.objectives.reinforce.html",
        "reference/generated/pgtorchrl.objectives.value.functional.html",
    }
    assert expected <= pages, expected - pages
    # the benchmark figures are the committed result files, copied into the site
    images = {p.name for p in (site / "_images").iterdir()}
    assert {"short_corridor_figure_13_1.png", "short_corridor_figure_13_2.png", "step_size.png"} <= images
    # the maths is served by the site itself: it renders without a network
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_a_browser_reads_the_index_the_api_page_and_the_spec_reference(served, tmp_path):
    index = rendered(f"{served}/index.html", tmp_path / "chromium")
    assert "Declarative policy-gradient pipelines" in index
    for page in ("guide/getting-started.html", "reference/api.html", "reference/spec.html", "benchmarks/mujoco.html"):
        assert f'href="{page}"' in index, page

    api = rendered(f"{served}/reference/generated/pgtorchrl.objectives.reinforce.html", tmp_path / "chromium")
    assert 'id="pgtorchrl.objectives.reinforce.ReinforceLoss"' in api
    assert "set_keys" in api and "loss_critic" in api
    # its equation, typeset by the site's own MathJax once the page's scripts ran
    assert "<mjx-container" in api

    spec = rendered(f"{served}/reference/spec.html", tmp_path / "chromium")
    for text in ("torchrl.A2CLoss", "total_frames", "Env frames to collect in all", "frames_per_batch", "lmbda"):
        assert text in spec, text


def test_the_search_page_finds_reinforceloss_offline(served, tmp_path):
    dom = ""
    for _ in range(3):  # the search index loads and runs in the page's virtual time: a loaded machine may need more
        dom = rendered(f"{served}/search.html?q=ReinforceLoss", tmp_path / "chromium", budget_ms=30000)
        if "pgtorchrl.objectives.reinforce.html" in dom:
            break
    assert "pgtorchrl.objectives.reinforce.html" in dom


# --- the spec reference: one source with `pgtorchrl list` ---------------------------------------------------------
def test_the_spec_reference_lists_every_registered_component_and_every_field(site):
    page = (site / "reference" / "spec.html").read_text()
    for registry in [*REGISTRIES.values(), TRANSFORMS]:
        for entry in registry.entries():
            assert f"{registry.kind}: {entry.name}" in page or f"transforms: {entry.name}" in page, entry.name
            for field in entry.model.model_fields:
                if field != "name":
                    assert f'<code class="docutils literal notranslate"><span class="pre">{field}</span>' in page
    for section in fixed_sections():
        assert f'id="{section.name}"' in page, section.name
    for field in top_level_fields():
        assert field.name in page


def test_every_field_of_pgtorchrls_own_components_and_sections_has_a_doc_line():
    """What ``pgtorchrl list --docs`` and the spec reference print for a field: its Field
    description, or its entry in the factory's ``Keyword Args:`` (TorchRL's classes are
    documented by TorchRL)."""
    undocumented = [
        f"{section.name}: {component.name}.{field.name}"
        for section in component_sections()
        for component in section.components
        if not component.is_torchrl
        for field in component.fields
        if not field.doc
    ]
    undocumented += [f"{s.name}.{f.name}" for s in fixed_sections() for f in s.fields if not f.doc]
    undocumented += [f.name for f in top_level_fields() if not f.doc]
    assert not undocumented, f"{len(undocumented)} fields without a doc line: {undocumented}"


def test_pgtorchrl_list_prints_the_same_sections_components_and_fields(capsys):
    assert cli_main(["list", "--docs"]) == 0
    out = capsys.readouterr().out
    for section in component_sections():
        for component in section.components:
            assert f"  {component.name:<14} {component.summary}" in out
            for f in component.fields:
                assert f"      {f.name}: {f.type} ({f.default_text})" in out
    for section in fixed_sections():
        assert f"{section.name}: {section.summary}" in out
        for f in section.fields:
            assert f"      {f.name}: {f.type} ({f.default_text})  {f.doc}" in out


def test_pgtorchrl_list_into_a_closed_pipe_stops_quietly(tmp_path):
    """``pgtorchrl list | head -1``: the reader has gone before the listing ends. Here the pipe's
    read end is closed before the command writes anything, so every write meets a broken pipe."""
    read, write = os.pipe()
    os.close(read)
    with open(tmp_path / "stderr", "w") as stderr:
        code = subprocess.run(
            [sys.executable, "-m", "pgtorchrl", "list", "--docs"], stdout=write, stderr=stderr, timeout=120
        )
    os.close(write)
    assert (tmp_path / "stderr").read_text() == ""  # no BrokenPipeError traceback
    assert code.returncode == 141


# --- the guide's code ----------------------------------------------------------------------------------------------
def _plugin_modules(page: Path, folder: Path) -> int:
    """Writes each Python block of ``page`` that names its module (``# my_envs.py ...``) to ``folder``
    under that name; returns how many it wrote."""
    written = 0
    for code in blocks(page, "python"):
        module = re.match(r"# (\w+)\.py", code)
        if module:
            (folder / f"{module.group(1)}.py").write_text(code)
            written += 1
    return written


def _pgtorchrl(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m pgtorchrl ARGS`` in ``cwd``, with ``cwd`` importable (the plugin modules written there)."""
    return subprocess.run(
        [sys.executable, "-m", "pgtorchrl", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{cwd}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
        timeout=600,
    )


def _fragments() -> list[tuple[Path, int, str]]:
    return [(p, i, block) for p in [*GUIDE, ROOT / "README.md"] for i, block in enumerate(blocks(p, "yaml"))]


@pytest.mark.parametrize(("page", "index", "block"), _fragments(), ids=lambda v: v.name if isinstance(v, Path) else "")
def test_every_yaml_block_of_the_guide_is_a_valid_spec_or_spec_fragment(page, index, block, tmp_path):
    """A fragment replaces its sections in ``vpg_cartpole.yaml``; a plugin it names is the module of the
    same page's Python block (``# my_envs.py ...``), written beside it. A spec with plugins is
    validated in its own process: its registrations must not reach the other tests' registries."""
    fragment = yaml.safe_load(block)
    _plugin_modules(page, tmp_path)
    spec = (
        fragment if "experiment" in fragment else {**yaml.safe_load(BASE_SPEC.read_text()), **copy.deepcopy(fragment)}
    )
    if spec["env"].get("name") == "gym_native" and spec["collector"].get("name") != "native":
        spec["env"]["name"] = "gym"  # a collector fragment (TorchRL's Collector) over the base spec's env
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    if not spec.get("plugins"):
        load_spec(path)
        return
    proc = _pgtorchrl("validate", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _spec_commands() -> list[str]:
    """The guide's command lines that train a committed spec (``pgtorchrl pipelines/X.yaml ...``)."""
    commands = []
    for page in GUIDE:
        for block in blocks(page, "bash"):
            for line in block.splitlines():
                line = re.sub(r"\s+#.*$", "", line.strip())
                match = re.match(r"^(?:python -m )?pgtorchrl (pipelines/\S+\.yaml.*)$", line)
                if match:
                    commands.append(match.group(1))
    return commands


def test_the_guide_trains_committed_specs_with_commands_that_validate():
    commands = _spec_commands()
    assert len(commands) >= 8, commands
    for command in commands:
        args = [a.strip("'\"") for a in re.findall(r"'[^']*'|\"[^\"]*\"|\S+", command)]
        if "--seeds" in args:  # validate takes no seeds: each seed's child run is the same spec
            i = args.index("--seeds")
            del args[i : i + 2]
        assert cli_main(["validate", str(ROOT / args[0]), *args[1:]]) == 0, command


def test_the_plugin_pages_env_and_components_train(tmp_path):
    page = DOCS / "guide" / "extending.md"
    assert _plugin_modules(page, tmp_path) == len(blocks(page, "python"))  # each block a named module
    spec = yaml.safe_load(BASE_SPEC.read_text())
    for fragment in blocks(page, "yaml"):
        fragment = yaml.safe_load(fragment)
        spec["plugins"] = spec.get("plugins", []) + fragment.pop("plugins")
        spec.update(fragment)
    spec["train"] = {"total_frames": 1024}
    spec["eval"] = {"episodes": 2}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    proc = _pgtorchrl("spec.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1024 frames" in proc.stdout + proc.stderr


def test_the_readmes_spec_trains_and_solves_cartpole(tmp_path):
    (tmp_path / "my_vpg.yaml").write_text(blocks(ROOT / "README.md", "yaml")[0])
    proc = _pgtorchrl("my_vpg.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("solved: eval/return_mean="), proc.stdout


@pytest.mark.slow
def test_the_deploy_pages_commands_and_onnx_example_run(tmp_path):
    """The deploy page's commands (training a registered policy, eval and load_actor of the
    champion), the TorchRL page's load_actor of the run, the command line page's export, then the
    deploy page's onnxruntime example on it."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": "sqlite:///mlruns/mlflow.db"}

    def shell(line: str) -> str:
        line = re.sub(r"^pgtorchrl ", f"{sys.executable} -m pgtorchrl ", line)
        line = re.sub(r"^python ", f"{sys.executable} ", line)
        proc = subprocess.run(line, shell=True, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, (line, proc.stderr[-3000:])
        return proc.stdout

    (deploy,) = blocks(DOCS / "guide" / "deploy.md", "bash")
    printed = "".join(
        shell(line.replace("pipelines/", f"{ROOT}/pipelines/"))
        for line in deploy.splitlines()
        if line.startswith(("pgtorchrl ", "python -c"))
    )
    found = re.search(r"mlflow run (\w+)", printed)
    assert found, printed
    run_id = found.group(1)
    # the TorchRL page's load_actor example, on that run
    (_, load) = blocks(DOCS / "guide" / "torchrl.md", "python")
    (tmp_path / "load.py").write_text(load.replace("RUN_ID", run_id) + "print(type(actor).__name__)\n")
    assert shell("python load.py").strip() == "ProbabilisticActor"  # vpg_cartpole has no observation transforms
    (export,) = [
        re.sub(r"\s+#.*$", "", line)
        for block in blocks(DOCS / "guide" / "command-line.md", "bash")
        for line in block.splitlines()
        if line.startswith("pgtorchrl export ")
    ]
    shell(export)
    (example,) = blocks(DOCS / "guide" / "deploy.md", "python")
    (tmp_path / "example.py").write_text(example)
    assert shell("python example.py").strip() == "[0 0]"
