"""seqjax/install.py: the notebooks' install keeps a runtime's GPU or TPU jax.

The decision is tested on made-up descriptions of installed distributions; the effect of its pip
command is tested with pip's own resolver, offline: a bare venv whose "installed" jax is a set of
.dist-info folders, and made-up wheels (seqjax with pyproject.toml's real dependencies, two jax
releases, a flax whose newest release asks for the newer jax) in a --find-links folder, resolved
with ``pip install --dry-run --report``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from seqjax import install

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "seqjax" / "install.py"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("7_*.ipynb"))
PY = "/runtime/bin/python3"


def _pins(command: list[str]) -> list[str]:
    """The constraint lines of the file a pip command passes with ``-c``."""
    text = Path(command[command.index("-c") + 1]).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


# ---- the decision ------------------------------------------------------------------------------
def test_this_venv_has_no_accelerator_jax_and_gets_the_plain_install():
    have = install.installed()
    assert set(have) >= {"jax", "jaxlib"}, have  # found through importlib.metadata
    assert have["jax"] == __import__("jax").__version__
    if install._kinds(have):
        pytest.skip(f"this venv has an accelerator jax: {have}")
    assert install.probe_backend() == "cpu"  # the child-process look at jax works here
    assert install.accelerator_jax(have) is None  # probes, and sees the CPU
    assert install.pip_command("src[glove]", PY) == [PY, "-m", "pip", "install", "-q", "src[glove]"]
    assert install.describe(have, None).startswith("no GPU or TPU jax")


def test_a_tpu_runtime_keeps_its_jax_jaxlib_and_libtpu(tmp_path):
    have = {"jax": "0.7.2", "jaxlib": "0.7.2", "libtpu": "0.0.17", "numpy": "2.0.2"}
    assert install.accelerator_jax(have, probe=False) == "tpu"
    command = install.pip_command("src[glove]", PY, have, workdir=tmp_path)
    assert command[:5] == [PY, "-m", "pip", "install", "-q"] and command[-1] == "src[glove]"
    assert command[5] == "-c" and Path(command[6]).parent == tmp_path and len(command) == 8
    assert _pins(command) == ["jax==0.7.2", "jaxlib==0.7.2", "libtpu==0.0.17"]  # numpy: not held
    assert install.describe(have, "tpu").startswith("keeping the runtime's jax 0.7.2 with its tpu backend")


def test_a_cuda_runtime_keeps_jax_and_both_plugin_wheels(tmp_path):
    have = {"jax": "0.6.2", "jaxlib": "0.6.2", "jax_cuda12_plugin": "0.6.2", "jax-cuda12-pjrt": "0.6.2",
            "nvidia-cudnn-cu12": "9.8.0.87"}
    assert install.accelerator_jax(have, probe=False) == "cuda12"
    command = install.pip_command("/content/seqjax-src[glove]", PY, have, workdir=tmp_path)
    assert command[-1] == "/content/seqjax-src[glove]"
    assert _pins(command) == ["jax==0.6.2", "jaxlib==0.6.2", "jax-cuda12-pjrt==0.6.2",
                              "jax-cuda12-plugin==0.6.2"]


def test_jax_and_the_probe_decide_where_no_wheel_says(monkeypatch, tmp_path):
    assert install.accelerator_jax({}, probe=False) is None
    assert install.accelerator_jax({"libtpu": "0.0.17"}, probe=False) is None  # no jax to keep
    cpu = {"jax": "0.7.2", "jaxlib": "0.7.2"}
    monkeypatch.setattr(install, "probe_backend", lambda timeout=180: "gpu")  # a jaxlib built with CUDA
    assert install.accelerator_jax(cpu, probe=False) is None
    assert install.accelerator_jax(cpu) == "gpu"
    assert _pins(install.pip_command("s", PY, cpu, "gpu", tmp_path)) == ["jax==0.7.2", "jaxlib==0.7.2"]
    monkeypatch.setattr(install, "probe_backend", lambda timeout=180: None)  # jax fails to start
    assert install.accelerator_jax(cpu) is None


def test_an_accelerator_jax_below_the_floor_is_upgraded_with_its_extra_or_refused():
    old_tpu = {"jax": "0.4.35", "jaxlib": "0.4.35", "libtpu": "0.0.5"}
    assert install.pip_command("s", PY, old_tpu) == [PY, "-m", "pip", "install", "-q", "s",
                                                      f"jax[tpu]>={install.JAX_FLOOR}"]
    old_cuda = {"jax": "0.4.23", "jaxlib": "0.4.23+cuda12.cudnn89"}  # CUDA inside jaxlib
    assert install.accelerator_jax(old_cuda, probe=False) == "cuda12"
    assert install.pip_command("s", PY, old_cuda)[-1] == f"jax[cuda12]>={install.JAX_FLOOR}"
    assert "upgrading the runtime's jax 0.4.23" in install.describe(old_cuda, "cuda12")
    with pytest.raises(RuntimeError, match=r"older than seqjax needs \(jax>=0\.6\.1\)"):
        install.pip_command("s", PY, {"jax": "0.5.0", "jaxlib": "0.5.0", "jax-rocm60-plugin": "0.5.0"})
    with pytest.raises(RuntimeError, match="upgrade jax for gpu first"):
        install.pip_command("s", PY, {"jax": "0.5.0", "jaxlib": "0.5.0"}, "gpu")  # seen only by the probe


def test_the_floor_is_pyprojects():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert f"jax>={install.JAX_FLOOR}" in deps and f"jaxlib>={install.JAX_FLOOR}" in deps
    assert install._release("0.4.23+cuda12.cudnn89") == (0, 4, 23) and install._release("0.10.0rc1") == (0, 10, 0)
    assert install._release("0.10.0") > install._release(install.JAX_FLOOR) > install._release("0.6.0")


# ---- runs before seqjax's dependencies are installed -------------------------------------------
def test_imports_only_the_standard_library():
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert names - {"__future__"} <= sys.stdlib_module_names, names - sys.stdlib_module_names


def test_runs_by_path_with_no_site_packages_and_a_module_beside_it_named_like_the_stdlibs(tmp_path):
    """``python seqjax-src/seqjax/install.py``: no site-packages (-S: nothing installed, so the
    plain install), and its own folder is not searched first (a seqjax/tempfile.py would win)."""
    shutil.copy(SCRIPT, tmp_path / "install.py")
    (tmp_path / "tempfile.py").write_text("raise ImportError('the folder of install.py was searched')\n")
    r = subprocess.run([sys.executable, "-S", str(tmp_path / "install.py"), "--print", "src dir[glove]"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    decision, command = r.stdout.splitlines()
    assert decision.startswith("no GPU or TPU jax")
    assert command == f"{sys.executable} -m pip install -q 'src dir[glove]'"
    r = subprocess.run([sys.executable, "-S", str(SCRIPT)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("usage:")


# ---- pip's resolver, offline --------------------------------------------------------------------
def _wheel(folder: Path, name: str, version: str, requires=(), extras=()) -> None:
    stem = f"{name.replace('-', '_')}-{version}"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Provides-Extra: {e}" for e in extras] + [f"Requires-Dist: {r}" for r in requires]
    with zipfile.ZipFile(folder / f"{stem}-py3-none-any.whl", "w") as z:
        z.writestr(f"{stem}.dist-info/METADATA", "\n".join(meta) + "\n")
        z.writestr(f"{stem}.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{stem}.dist-info/RECORD", "")


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    """A --find-links folder: seqjax with pyproject.toml's dependencies; jax/jaxlib/plugin/libtpu
    0.6.1 and 0.7.0; flax 0.10.0 (jax>=0.6.1) and 99.0 (jax>=0.7.0); every other dependency at 99.0."""
    folder = tmp_path_factory.mktemp("wheels")
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    _wheel(folder, "seqjax", "0.1.0", deps)
    for v in ("0.6.1", "0.7.0"):
        _wheel(folder, "jax", v, [f"jaxlib>={v}", f'jax-cuda12-plugin=={v}; extra == "cuda12"',
                                  f'libtpu=={v}; extra == "tpu"'], ["cuda12", "tpu"])
        for name in ("jaxlib", "jax-cuda12-plugin", "libtpu"):
            _wheel(folder, name, v)
    _wheel(folder, "flax", "0.10.0", ["jax>=0.6.1"])
    _wheel(folder, "flax", "99.0", ["jax>=0.7.0"])
    for dep in deps:
        name = re.match(r"[A-Za-z0-9._-]+", dep)[0]
        if name not in ("jax", "jaxlib", "flax"):
            _wheel(folder, name, "99.0")
    (folder / "pip").mkdir()
    (folder / "pip" / "pip").symlink_to(Path(__import__("pip").__file__).parent)  # for PYTHONPATH
    return folder


def _resolve(index: Path, tmp_path: Path, have: dict[str, str], argv: list[str]) -> tuple[str, dict[str, str]]:
    """Run ``argv`` (``-m pip ...`` or install.py) with the Python of a new venv holding only
    ``have`` as installed .dist-info folders, pip in dry-run mode against ``index`` alone; returns
    the stdout and what pip would install, ``{name: version}``."""
    venv = tmp_path / "runtime"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    for name, version in have.items():
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "PYTHON")) and k != "VIRTUAL_ENV"}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(index), PIP_DRY_RUN="1",
               PIP_REPORT=str(report), PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1",
               PYTHONPATH=str(index / "pip"))
    r = subprocess.run([str(venv / "bin" / "python"), *argv], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    plan = json.loads(report.read_text())["install"]
    return r.stdout, {i["metadata"]["name"]: i["metadata"]["version"] for i in plan}


def test_pip_keeps_a_tpu_jax_that_a_plain_install_replaces(index, tmp_path):
    have = {"jax": "0.6.1", "jaxlib": "0.6.1", "libtpu": "0.0.17"}
    _, plain = _resolve(index, tmp_path / "plain", have, ["-m", "pip", "install", "-q", "seqjax"])
    assert plain["jax"] == plain["jaxlib"] == "0.7.0"  # the newest flax pulls PyPI's jaxlib over libtpu's
    out, kept = _resolve(index, tmp_path / "kept", have, [str(SCRIPT), "seqjax"])
    assert out.startswith("keeping the runtime's jax 0.6.1 with its tpu backend")
    assert not {"jax", "jaxlib", "libtpu"} & set(kept)  # nothing of jax is installed over
    assert kept["seqjax"] == "0.1.0" and kept["flax"] == "0.10.0"  # the flax that runs on jax 0.6.1
    assert set(kept) == set(plain) - {"jax", "jaxlib"}  # every other dependency still installed


def test_pip_upgrades_an_old_cuda_jax_with_its_plugin(index, tmp_path):
    have = {"jax": "0.5.0", "jaxlib": "0.5.0", "jax-cuda12-plugin": "0.5.0"}
    _, plain = _resolve(index, tmp_path / "plain", have, ["-m", "pip", "install", "-q", "seqjax"])
    assert plain["jaxlib"] == "0.7.0" and "jax-cuda12-plugin" not in plain  # the plugin left at 0.5.0
    out, upgraded = _resolve(index, tmp_path / "up", have, [str(SCRIPT), "seqjax"])
    assert out.startswith("upgrading the runtime's jax 0.5.0")
    assert upgraded["jax"] == upgraded["jaxlib"] == upgraded["jax-cuda12-plugin"] == "0.7.0"


# ---- the notebooks ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_install_cell_runs_install_py_from_the_source(path):
    """The first code cell installs through ``SRC/seqjax/install.py`` (the source's, run by this
    kernel's Python, with the ``[glove]`` extra) and pip nowhere else; the branch for an
    importable seqjax installs nothing."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])
    tree = ast.parse(cell)
    runs = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == "subprocess.run"),
                  key=lambda n: n.lineno)
    argvs = [ast.unparse(n.args[0]) for n in runs]
    assert argvs[-1] == "[sys.executable, str(SRC / 'seqjax' / 'install.py'), f'{SRC}[glove]']", argvs
    assert eval(ast.unparse(runs[-1].args[0].elts[1]), {"SRC": ROOT, "str": str}) == str(SCRIPT)
    assert all(argv.startswith("['git', 'clone'") for argv in argvs[:-1]), argvs
    assert '"pip"' not in cell and "'pip'" not in cell
    branch = next(n for n in ast.walk(tree) if isinstance(n, ast.If) and "find_spec('seqjax') is None" in ast.unparse(n.test))
    assert "install.py" in ast.unparse(branch.body) and "install.py" not in ast.unparse(branch.orelse)
    assert "nothing to install" in ast.unparse(branch.orelse)
