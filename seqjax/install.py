"""Install seqjax into the running Python without replacing a GPU or TPU jax (the notebooks' install cell).

``python seqjax-src/seqjax/install.py "seqjax-src[glove]"`` (``--print``: decide and show the pip
command, install nothing).

A Colab GPU runtime ships ``jax[cuda12]`` (jax, jaxlib and the ``jax-cuda12-plugin`` /
``jax-cuda12-pjrt`` wheels); a TPU runtime ships jax with ``libtpu``. A plain ``pip install`` of
seqjax moves jax and jaxlib to another release wherever a dependency asks for a newer jax than the
runtime's (or the runtime's is older than seqjax's own floor); the new jaxlib is PyPI's, the plugin
or libtpu stays at the old release, and the notebook then runs on the CPU or fails at ``import
jax``. The rule (:func:`accelerator_jax`, :func:`pip_command`):

* no jax with a GPU or TPU backend here: the plain ``pip install -q SOURCE``;
* one at or above seqjax's jax floor (:data:`JAX_FLOOR`): the same install under a pip
  constraints file pinning the installed jax, jaxlib and accelerator wheels (plugin, pjrt,
  libtpu) at their installed versions, so pip resolves everything else around them;
* one below the floor: ``pip install -q SOURCE "jax[<its extras>]>=JAX_FLOOR"``, which upgrades jax
  together with its plugin or libtpu; where jax has no pip extra for that accelerator (ROCm, Metal,
  a jax pip cannot see), :func:`pip_command` raises rather than leave a CPU jaxlib behind.

Standard library only: the notebook runs this file from the cloned source before seqjax or any of
its dependencies is installed. It never imports jax into the calling process: the one look at
jax's backend (:func:`probe_backend`) runs in a child Python, so a kernel that runs this with
``runpy`` does not hold a jax that pip may replace under it.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder (seqjax/) is sys.path[0]: a module there named like a
# standard-library one (seqjax/types.py, seqjax/io.py, ...) would be imported in its place.
if __name__ == "__main__" and sys.path and (
        os.path.abspath(sys.path[0] or os.curdir) == os.path.dirname(os.path.abspath(__file__))):
    del sys.path[0]

import importlib.metadata  # noqa: E402 (after the sys.path fix above)
import re  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

JAX_FLOOR = "0.6.1"  # pyproject.toml's jax (and jaxlib) floor; tests/test_install.py keeps them equal

# The distributions that make up a jax installation: jax, jaxlib and the accelerator wheels.
JAX_DISTRIBUTIONS = re.compile(r"jax|jaxlib|libtpu|libtpu-nightly|jax-(?:cuda|rocm)\d*-(?:plugin|pjrt)|jax-metal")
# jax's pip extras that install an accelerator with jax (jax[tpu], jax[cuda12], jax[cuda13]); an
# extra jax lacks is skipped by pip with a warning, leaving the CPU jaxlib alone: never ask one.
UPGRADE_EXTRAS = ("tpu", "cuda12", "cuda13")

PROBE = "import jax; print(jax.default_backend())"


def _normalize(name: str) -> str:
    """A distribution name as PEP 503 compares it: ``jax_cuda12_plugin`` -> ``jax-cuda12-plugin``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _release(version: str) -> tuple[int, ...]:
    """The release numbers of a version: ``"0.4.23+cuda12.cudnn89"`` -> ``(0, 4, 23)``,
    ``"0.7.0rc1"`` -> ``(0, 7, 0)`` (enough to compare with :data:`JAX_FLOOR`)."""
    numbers = []
    for part in version.split("+")[0].split("."):
        digits = re.match(r"\d+", part)
        if not digits:
            break
        numbers.append(int(digits[0]))
        if digits.end() < len(part):
            break
    return tuple(numbers)


def installed() -> dict[str, str]:
    """The jax distributions installed in this Python, as ``{normalized name: version}``: any of
    jax, jaxlib, libtpu, libtpu-nightly, jax-cudaNN-plugin/-pjrt, jax-rocmNN-plugin/-pjrt,
    jax-metal. The first found on ``sys.path`` wins, as for ``import``."""
    have: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        try:
            name = _normalize(dist.metadata.get("Name") or "")
            version = dist.version
        except Exception:  # a broken .dist-info: not ours to judge
            continue
        if version and JAX_DISTRIBUTIONS.fullmatch(name):
            have.setdefault(name, version)
    return have


def _kinds(have: dict[str, str]) -> list[str]:
    """The accelerators the installed distributions ``have`` give jax (sorted, e.g. ``["cuda12"]``,
    ``["tpu"]``; ``[]`` for none): libtpu -> tpu; jax-cudaNN-plugin/-pjrt -> cudaNN; the same for
    ROCm; jax-metal -> metal; a jaxlib with CUDA built in (``0.4.23+cuda12.cudnn89``) -> cuda12."""
    kinds = set()
    for name in have:
        if name.startswith("libtpu"):
            kinds.add("tpu")
        elif m := re.fullmatch(r"jax-((?:cuda|rocm)\d*)-(?:plugin|pjrt)", name):
            kinds.add(m[1])
        elif name == "jax-metal":
            kinds.add("metal")
    if m := re.match(r"(?:cuda|rocm)\d*", have.get("jaxlib", "").partition("+")[2]):
        kinds.add(m[0])
    return sorted(kinds)


def probe_backend(timeout: float = 180) -> str | None:
    """``jax.default_backend()`` of this Python's jax (``"cpu"``, ``"gpu"``, ``"tpu"``, ...), asked in
    a child process; ``None`` where jax does not import or the child fails or times out."""
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                           timeout=timeout, env=env, cwd=tempfile.gettempdir())
    except (OSError, subprocess.SubprocessError):
        return None
    lines = r.stdout.split()
    return lines[-1].lower() if r.returncode == 0 and lines else None


def accelerator_jax(have: dict[str, str] | None = None, probe: bool = True) -> str | None:
    """The accelerator backend of the jax installed here, or ``None`` where there is no jax or it
    runs on the CPU.

    ``have``: ``{distribution name: version}`` (default: :func:`installed`). Returns the kinds of
    :func:`_kinds` joined by ``+`` (``"tpu"``, ``"cuda12"``, ``"cuda12+tpu"``). Where ``have`` holds
    jax and jaxlib but no accelerator wheel and ``probe`` is true, jax itself is asked
    (:func:`probe_backend`: a jaxlib built with CUDA by conda or by hand) and its backend is
    returned unless it is ``"cpu"``. The wheels decide first so that a TPU is never opened here
    where libtpu already says what it is (a TPU held by another process can make the probe fail).
    """
    have = installed() if have is None else {_normalize(k): v for k, v in have.items()}
    if "jax" not in have:
        return None  # no jax, nothing to keep
    if kinds := _kinds(have):
        return "+".join(kinds)
    if probe and "jaxlib" in have:
        backend = probe_backend()
        if backend and backend != "cpu":
            return backend
    return None


def _below_floor(have: dict[str, str]) -> bool:
    return any(_release(have[n]) < _release(JAX_FLOOR) for n in ("jax", "jaxlib") if n in have)


def constraints(have: dict[str, str]) -> list[str]:
    """The pip constraint lines that hold the jax distributions in ``have`` (``{name: version}``;
    other names are left out) at their versions: ``["jax==0.7.2", "jaxlib==0.7.2",
    "libtpu==0.0.17"]``, jax and jaxlib first."""
    have = {_normalize(k): v for k, v in have.items() if JAX_DISTRIBUTIONS.fullmatch(_normalize(k))}
    return [f"{n}=={have[n]}" for n in sorted(have, key=lambda n: (n not in ("jax", "jaxlib"), n))]


def pip_command(source: str, python: str, have: dict[str, str] | None = None,
                accelerator: str | None = None, workdir: str | Path | None = None) -> list[str]:
    """The pip argv that installs ``source`` into ``python`` without replacing an accelerator jax.

    ``source``: what pip installs (``"seqjax-src[glove]"``, a path or a requirement); ``python``:
    the interpreter to install into; ``have``: its jax distributions, ``{name: version}``
    (default: :func:`installed`, this Python's); ``accelerator``: as :func:`accelerator_jax`
    returns it (default: read from ``have`` alone, no probe); ``workdir``: the folder for the
    constraints file (default: a new temporary folder, left for the caller).

    Returns ``[python, "-m", "pip", "install", "-q", ...]``: with no accelerator, ``source`` alone;
    with one at or above :data:`JAX_FLOOR`, ``-c FILE source`` where FILE pins :func:`constraints`;
    below it, ``source "jax[EXTRAS]>=JAX_FLOOR"``. Raises ``RuntimeError`` (its message says what
    to do) for an accelerator jax below the floor that no jax extra upgrades.
    """
    have = installed() if have is None else {_normalize(k): v for k, v in have.items()}
    accelerator = accelerator or accelerator_jax(have, probe=False)
    command = [python, "-m", "pip", "install", "-q"]
    if not accelerator:
        return command + [source]
    if _below_floor(have):
        extras = _kinds(have)
        if not extras or not set(extras) <= set(UPGRADE_EXTRAS):
            raise RuntimeError(
                f"this runtime's jax {have.get('jax', '?')} (jaxlib {have.get('jaxlib', '?')}) runs on "
                f"{accelerator} and is older than seqjax needs (jax>={JAX_FLOOR}), and pip has no jax "
                f"extra that upgrades it with its {accelerator} support: upgrade jax for {accelerator} "
                "first (https://docs.jax.dev/en/latest/installation.html), then run this again")
        return command + [source, f"jax[{','.join(extras)}]>={JAX_FLOOR}"]
    # A constraints file, not --no-deps: pip still installs every other dependency (flax, optax,
    # orbax-checkpoint, ...) with their own dependencies, and resolves them against the pinned jax
    # (a flax that needs a newer jax gives way to an older flax) instead of installing them
    # unchecked. --no-deps would also not hold: flax, optax and orbax depend on jax themselves, so
    # installing them would move jax again. A constraint only limits versions, so it installs
    # nothing the requirements do not ask for (libtpu is never added to a GPU runtime).
    path = Path(workdir if workdir is not None else tempfile.mkdtemp(prefix="seqjax-install-"))
    path = path / "jax-constraints.txt"
    path.write_text("# written by seqjax/install.py: keep the runtime's accelerator jax as it is\n"
                    + "".join(line + "\n" for line in constraints(have)), encoding="utf-8")
    return command + ["-c", str(path), source]


def describe(have: dict[str, str], accelerator: str | None) -> str:
    """One line saying what :func:`pip_command` does for ``have`` (``{name: version}``) and
    ``accelerator`` (as :func:`accelerator_jax` returns it)."""
    have = {_normalize(k): v for k, v in have.items()}
    if not accelerator:
        return "no GPU or TPU jax in this runtime: a plain pip install of seqjax and its dependencies"
    if _below_floor(have):
        return (f"upgrading the runtime's jax {have.get('jax')} (below seqjax's floor {JAX_FLOOR}) "
                f"together with its {accelerator} backend: jax[{','.join(_kinds(have))}]")
    held = ", ".join(line.replace("==", " ") for line in constraints(have))
    return f"keeping the runtime's jax {have['jax']} with its {accelerator} backend (pip holds {held})"


def main(argv: list[str] | None = None) -> int:
    """``install.py [--print] SOURCE``: decide (one line on stdout), then run pip (its messages
    pass through). Returns the exit status: pip's, 1 where no install keeps the accelerator, 2 on
    bad arguments. ``--print`` shows the pip command instead of running it."""
    args = sys.argv[1:] if argv is None else list(argv)
    show = "--print" in args
    rest = [a for a in args if a != "--print"]
    if len(rest) != 1 or rest[0].startswith("-"):
        print("usage: python install.py [--print] SOURCE  (SOURCE: what pip installs, e.g. "
              '"seqjax-src[glove]")', file=sys.stderr)
        return 2
    have = installed()
    accelerator = accelerator_jax(have)
    with tempfile.TemporaryDirectory(prefix="seqjax-install-") as work:
        try:
            command = pip_command(rest[0], sys.executable, have, accelerator, work)
        except RuntimeError as e:
            print(e, file=sys.stderr)
            return 1
        print(describe(have, accelerator), flush=True)
        if show:
            print(shlex.join(command))
            return 0
        return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main())
