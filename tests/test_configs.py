"""Every field of every config class is read by code that holds *that* config.

A text search for ``cfg.<name>`` passes a dead field as soon as any other config reads a field
of the same name (``seed``, ``lr``, ``epochs`` ... are in several). So the check here reads
the package's source with ``ast`` and ties each attribute read ``x.name`` to the config class
that ``x`` holds. Where a value's config class comes from, in order:

* a parameter annotated with the class (``cfg: configs.ImdbConfig``, ``ImdbConfig | None``,
  or a default ``= ImdbConfig()``), or a ``self`` inside a config class's own methods;
* a call of the class (``configs.CharLMConfig(**meta)``), ``dataclasses.replace(x, ...)`` of
  a typed ``x``, a call of a function annotated to return the class, or a call that takes the
  class itself as an argument (``_config(configs.MarkovConfig, args)``);
* an assignment, ``a or b`` / ``a if c else b`` of typed values, a ``for`` over a literal
  list of them, an attribute that some class sets from a typed value (``self.cfg = ...``, or
  a dataclass field annotated with the class), an item of a module-level dict / list / tuple
  of configs;
* a call: a typed argument types the callee's parameter (by position or keyword), whatever
  the callee's own annotation says, so helpers written ``def min_len(cfg)`` are followed.
  Callees are resolved by module (``charlm.train`` is ``seqjax/tasks/charlm.py``'s), and
  nested functions see their enclosing function's names.

A read counts only for the classes the value can hold, so a field that only another config
reads is reported. When this test names a field that is read, the read is through a value the
walk cannot type: annotate the parameter that carries it.
"""

from __future__ import annotations

import ast
import dataclasses
from collections import defaultdict
from pathlib import Path

import pytest

from seqjax import configs

PACKAGE = Path(configs.__file__).parent
CONFIGS = {name: {f.name for f in dataclasses.fields(cls)} for name, cls in vars(configs).items()
           if isinstance(cls, type) and dataclasses.is_dataclass(cls) and name.endswith("Config")}


class _Func:
    def __init__(self, node, module, cls, parent):
        self.node, self.module, self.cls, self.parent = node, module, cls, parent
        args = node.args
        self.params = [a.arg for a in args.posonlyargs + args.args]
        self.kwonly = [a.arg for a in args.kwonlyargs]
        self.is_method = cls is not None and parent is None and bool(self.params) and \
            self.params[0] in ("self", "cls") and not any(
                isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)


class ConfigReads:
    """The attribute reads of config values in ``sources`` (``{module name: source text}``),
    for the config classes ``fields`` (``{class name: {field names}}``)."""

    def __init__(self, sources: dict[str, str], fields: dict[str, set[str]]):
        self.fields = fields
        self.funcs: list[_Func] = []
        self.module_funcs: dict[tuple[str, str], list[_Func]] = defaultdict(list)
        self.methods: dict[str, list[_Func]] = defaultdict(list)
        self.classes: dict[str, list[str]] = defaultdict(list)  # class name -> modules
        self.imports: dict[str, dict[str, tuple[str, str | None]]] = {}
        self.module_env: dict[str, dict[str, set[str]]] = {}
        self.attr_types: dict[str, set[str]] = defaultdict(set)
        self.param_types: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.final_env: dict[int, dict[str, set[str]]] = {}
        self.reads: dict[str, set[str]] = defaultdict(set)
        self.trees = {m: ast.parse(src) for m, src in sources.items()}
        for module, tree in self.trees.items():
            self._index(module, tree)
        for _ in range(20):  # propagate types across calls until nothing changes
            before = self._size()
            for module, tree in self.trees.items():
                self._module_level(module, tree)
            for f in self.funcs:
                self._function(f)
            if self._size() == before:
                break

    # ---- indexing ------------------------------------------------------------------------
    def _index(self, module, tree):
        imports = self.imports.setdefault(module, {})
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    imports[a.asname or a.name.split(".")[0]] = (a.name if a.asname else a.name.split(".")[0], None)
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module if node.level == 0 else self._relative(module, node)
                for a in node.names:
                    # `from pkg import mod` (a module) or `from mod import name`
                    imports[a.asname or a.name] = (base, a.name)

        def visit(body, cls, parent):
            for node in body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    f = _Func(node, module, cls, parent)
                    self.funcs.append(f)
                    if parent is None and cls is None:
                        self.module_funcs[(module, node.name)].append(f)
                    elif parent is None:
                        self.methods[node.name].append(f)
                        if node.name == "__init__":
                            self.module_funcs[(module, cls)].append(f)
                    visit(node.body, cls, f)
                elif isinstance(node, ast.ClassDef) and parent is None:
                    self.classes[node.name].append(module)
                    visit(node.body, node.name, None)
                elif hasattr(node, "body") and not isinstance(node, ast.ClassDef):
                    for part in ("body", "orelse", "finalbody", "handlers"):
                        visit(getattr(node, part, []), cls, parent)

        visit(tree.body, None, None)

    @staticmethod
    def _relative(module, node):
        parts = module.split(".")[: -node.level]
        return ".".join(parts + ([node.module] if node.module else []))

    def _size(self):
        return (sum(len(v) for v in self.reads.values()),
                sum(len(t) for p in self.param_types.values() for t in p.values()),
                sum(len(v) for v in self.attr_types.values()),
                sum(len(t) for e in self.module_env.values() for t in e.values()),
                sum(len(t) for e in self.final_env.values() for t in e.values()))

    # ---- types of expressions ---------------------------------------------------------------
    def _config_name(self, node) -> str | None:
        """The config class a bare reference names (``ImdbConfig``, ``configs.ImdbConfig``)."""
        if isinstance(node, ast.Name) and node.id in self.fields:
            return node.id
        if isinstance(node, ast.Attribute) and node.attr in self.fields:
            return node.attr
        return None

    def _annotation(self, node) -> set[str]:
        if node is None:
            return set()
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                node = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                return set()
        if isinstance(node, ast.BinOp):
            return self._annotation(node.left) | self._annotation(node.right)
        if isinstance(node, ast.Subscript):  # Optional[X], Union[X, Y]
            inner = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            return set().union(*(self._annotation(n) for n in inner))
        name = self._config_name(node)
        return {name} if name else set()

    def _callees(self, f: _Func, func) -> list[tuple[_Func, int]]:
        """Functions a call of ``func`` may run, each with the number of leading parameters the
        call does not pass (1 for ``self``)."""
        module, imports = f.module, self.imports[f.module]
        out = []
        if isinstance(func, ast.Name):
            targets = [(module, func.id)]
            if func.id in imports:
                base, name = imports[func.id]
                targets.append((base, name))
            for key in targets:
                out += [(g, int(g.is_method)) for g in self.module_funcs.get(key, [])]
        elif isinstance(func, ast.Attribute):
            value = func.value
            if isinstance(value, ast.Name) and value.id in imports:
                base, name = imports[value.id]
                mod = f"{base}.{name}" if name else base
                out += [(g, int(g.is_method)) for g in self.module_funcs.get((mod, func.attr), [])]
            if not out:  # a method of some class of the package
                out += [(g, int(g.is_method)) for g in self.methods.get(func.attr, [])]
        return out

    def _type(self, node, env) -> set[str]:
        if isinstance(node, ast.Name):
            return set(env.get(node.id, ()))
        if isinstance(node, ast.Call):
            name = self._config_name(node.func)
            if name:
                return {name}
            func = node.func
            if (isinstance(func, ast.Attribute) and func.attr == "replace") or \
                    (isinstance(func, ast.Name) and func.id == "replace"):
                return self._type(node.args[0], env) if node.args else set()
            if isinstance(func, ast.Attribute) and func.attr == "get":  # PRESETS.get(name)
                return {t[:-2] for t in self._type(func.value, env) if t.endswith("[]")}
            for arg in node.args:  # a factory given the class: _config(configs.X, args)
                if self._config_name(arg) and not isinstance(arg, ast.Call):
                    return {self._config_name(arg)}
            return set()
        if isinstance(node, ast.Attribute):
            return set(self.attr_types.get(node.attr, ()))
        if isinstance(node, ast.IfExp):
            return self._type(node.body, env) | self._type(node.orelse, env)
        if isinstance(node, ast.BoolOp):
            return set().union(*(self._type(v, env) for v in node.values))
        if isinstance(node, ast.Subscript):
            return {t[:-2] for t in self._type(node.value, env) if t.endswith("[]")}
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return {t + "[]" for e in node.elts for t in self._type(e, env) if not t.endswith("[]")}
        if isinstance(node, ast.Dict):
            return {t + "[]" for v in node.values for t in self._type(v, env) if not t.endswith("[]")}
        return set()

    # ---- walking ---------------------------------------------------------------------------------
    def _module_level(self, module, tree):
        env = self.module_env.setdefault(module, defaultdict(set))
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        env[t.id] |= self._type(node.value, env)
            if isinstance(node, ast.ClassDef):  # dataclass fields annotated with a config class
                for item in node.body:
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        self.attr_types[item.target.id] |= self._annotation(item.annotation)
        self._walk(tree.body, None, env)

    def _env(self, f: _Func):
        env = defaultdict(set)
        for k, v in self.module_env.get(f.module, {}).items():
            env[k] |= v
        if f.parent is not None:  # the enclosing function's names, as its last walk left them
            for k, v in self.final_env.get(id(f.parent), {}).items():
                env[k] |= v
        args = f.node.args
        all_args = args.posonlyargs + args.args + args.kwonlyargs
        defaults = [None] * (len(args.posonlyargs + args.args) - len(args.defaults)) + list(args.defaults) + \
            list(args.kw_defaults)
        for a, d in zip(all_args, defaults):
            env[a.arg] = self._annotation(a.annotation) | (self._type(d, env) if d is not None else set()) | \
                self.param_types[id(f)][a.arg]
        if f.is_method and f.cls in self.fields:
            env[f.params[0]] = {f.cls}
        return env

    def _function(self, f: _Func):
        env = self._env(f)
        for _ in range(2):  # assignments may come after the code that reads them (loops)
            self._walk(f.node.body, f, env)
        self.final_env[id(f)] = env

    def _walk(self, body, f, env):
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue  # analysed on their own (nested functions see this env via _env)
            for node in _walk_no_nested(stmt):
                self._node(node, f, env)

    def _node(self, node, f, env):
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            types = self._type(node.value, env)
            if isinstance(node, ast.AnnAssign):
                types |= self._annotation(node.annotation)
            for t in targets:
                if isinstance(t, ast.Name):
                    env[t.id] = set(env.get(t.id, ())) | types
                elif isinstance(t, ast.Attribute):  # self.cfg = ...: any x.cfg may hold it
                    self.attr_types[t.attr] |= types
        elif isinstance(node, (ast.For, ast.comprehension)) and isinstance(node.target, ast.Name):
            elems = {t[:-2] for t in self._type(node.iter, env) if t.endswith("[]")}
            env[node.target.id] = set(env.get(node.target.id, ())) | elems
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            for t in self._type(node.value, env):
                if node.attr in self.fields.get(t, ()):
                    self.reads[t].add(node.attr)
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) >= 2 and \
                    isinstance(node.args[1], ast.Constant):
                for t in self._type(node.args[0], env):
                    if node.args[1].value in self.fields.get(t, ()):
                        self.reads[t].add(node.args[1].value)
            if f is None:
                return
            for g, skip in self._callees(f, func):
                params = g.params[skip:]
                for i, arg in enumerate(node.args):
                    if i < len(params) and not isinstance(arg, ast.Starred):
                        self.param_types[id(g)][params[i]] |= self._type(arg, env)
                for kw in node.keywords:
                    if kw.arg in g.params or kw.arg in g.kwonly:
                        self.param_types[id(g)][kw.arg] |= self._type(kw.value, env)


def _walk_no_nested(node):
    """``ast.walk`` that does not enter nested functions, lambdas or classes (their bodies are
    analysed on their own, with the enclosing names)."""
    todo = [node]
    while todo:
        n = todo.pop()
        yield n
        for child in ast.iter_child_nodes(n):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                todo.append(child)


def package_sources() -> dict[str, str]:
    return {"seqjax." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__"):
            p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_config_field_is_read_by_code_that_holds_that_config():
    reads = ConfigReads(package_sources(), CONFIGS).reads
    assert set(CONFIGS) >= {"MarkovConfig", "EmbeddingsConfig", "CharLMConfig", "ImdbConfig", "Word2VecConfig"}
    unread = {name: sorted(fields - reads[name]) for name, fields in CONFIGS.items() if fields - reads[name]}
    assert not unread, f"config fields no code holding that config reads: {unread}"


SHARED_NAME = '''
import dataclasses
from seqjax import configs


def run_a(cfg: configs.A):
    helper(cfg, 3)
    b = configs.B(x=1)
    return dataclasses.replace(cfg, x=2).x + b.x


def helper(c, n):
    def inner():
        return c.seed  # A.seed, read through a helper and a closure
    return inner() + n


def run_b(cfg: configs.B):
    return cfg.x
'''


def test_the_walk_ties_reads_to_their_config_class():
    """The case a text search passes: ``B.seed`` shares its name with ``A.seed``, which is
    read; ``B.seed`` itself never is."""
    reads = ConfigReads({"seqjax.demo": SHARED_NAME}, {"A": {"x", "seed"}, "B": {"x", "seed"}}).reads
    assert reads["A"] == {"x", "seed"}
    assert reads["B"] == {"x"}


HELPER_ELSEWHERE = '''
def helper(c, n):
    return c.seed + n
'''


@pytest.mark.parametrize("call, imports, other", [
    ("helper(n=3, c=cfg)", "", None),  # by keyword
    ("util.helper(cfg, 3)", "from seqjax import util", HELPER_ELSEWHERE),  # in another module
    ("helper(cfg, 3)", "from seqjax.util import helper", HELPER_ELSEWHERE),
])
def test_the_walk_follows_arguments_into_callees(call, imports, other):
    src = SHARED_NAME.replace("    helper(cfg, 3)", "    " + call).replace("import dataclasses", "import dataclasses\n" + imports)
    if other is not None:  # the helper lives in seqjax/util.py only
        src = src.replace(src[src.index("def helper"):src.index("def run_b")], "")
    sources = {"seqjax.demo": src} | ({"seqjax.util": other} if other else {})
    reads = ConfigReads(sources, {"A": {"x", "seed"}, "B": {"x", "seed"}}).reads
    assert reads["A"] == {"x", "seed"} and reads["B"] == {"x"}
