#!/usr/bin/env python
"""The structure's numbers (CONTRIBUTING.md's style, measured): code cells per notebook and their lines (median, max,
how many over 60), long lines, semicolon chains, private names imported across modules, import cycles, and public
functions whose parameters lack docments, and private names of other libraries used outside `swiftnb.core.compat`.

    python tools/structure.py            # the table and the totals
    python tools/structure.py --check    # exit 1 when a limit is broken (and say where)
"""
import argparse, ast, importlib, inspect, io, json, statistics, sys, tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMITS = dict(median=8, cell=60, line=120)
INTERNAL = '_internal'   # the one module other modules may take private names from
COMPAT = 'swiftnb.core.compat'   # the one module that may touch other libraries' private names (nbs/00a_compat)
# private names of other libraries accepted outside COMPAT, and why
ALLOW = {'_option_string_actions': "Python's own argparse (the standard library, not a dependency that upgrades on its "
                                   "own schedule): the parser's flags, to name an unknown one before any other error",
         '_chunks_to': "swiftnb's own method on its Trainer subclass (transformers' Trainer has none of that name)"}

def code_cells(nb: Path):
    "The source of each code cell of notebook `nb`."
    return [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']

def semicolons(src: str) -> list:
    "Line numbers (1-based) of `src` where statements are chained with ';'."
    try: toks = list(tokenize.generate_tokens(io.StringIO(src).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError): return []
    return sorted({t.start[0] for t in toks if t.type == tokenize.OP and t.string == ';'})

PACKAGES = set()   # modules that are packages (their __init__.py): a relative import starts from them, not their parent

def _imports(tree, mod):
    "(imported module, names) for each relative or `swiftnb.` import in a module's tree, at any depth."
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom):
            src = n.module or ''
            if n.level:
                base = mod.split('.') + (['_'] if mod in PACKAGES else [])
                src = '.'.join(base[:len(base) - n.level] + ([src] if src else []))
            if src.startswith('swiftnb'): yield src, [a.name for a in n.names], n
        elif isinstance(n, ast.Import):
            for a in n.names:
                if a.name.startswith('swiftnb.'): yield a.name, [], n

def modules():
    "{module name: ast tree} of the package."
    out = {}
    for p in sorted((ROOT/'swiftnb').rglob('*.py')):
        if p.name == '_modidx.py': continue
        name = '.'.join(p.relative_to(ROOT).with_suffix('').parts)
        if name.endswith('.__init__'): PACKAGES.add(name.removesuffix('.__init__'))
        out[name.removesuffix('.__init__')] = ast.parse(p.read_text())
    return out

def private_imports(mods):
    "['importer: module._name'] for each private name taken from another module (except the internal one)."
    bad = []
    for mod, tree in mods.items():
        for src, names, _ in _imports(tree, mod):
            if src == mod or src.rsplit('.', 1)[-1] == INTERNAL: continue
            bad += [f'{mod}: {src}.{a}' for a in names if a.startswith('_') and not a.startswith('__')]
    return bad

def cycles(mods):
    "Import cycles among the package's modules, counting top-level imports only (function-level ones run late)."
    graph = {m: set() for m in mods}
    for mod, tree in mods.items():
        for n in tree.body:
            for src, names, _ in _imports(ast.Module(body=[n], type_ignores=[]), mod):
                for tgt in [src] + [f'{src}.{a}' for a in names]:
                    if tgt in mods and tgt != mod and not (tgt == 'swiftnb' or mod.startswith(tgt + '.')): graph[mod].add(tgt)
    found, state = [], {}
    def visit(m, path):
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1: found.append(path[path.index(t):] + [t])
            elif not state.get(t): visit(t, path + [t])
        state[m] = 2
    for m in sorted(graph):
        if not state.get(m): visit(m, [m])
    return found

def _private(name) -> bool: return name.startswith('_') and not name.startswith('__')

def _foreign_classes(mod:str, tree) -> list:
    """The classes of module `mod` that derive from another library's class: a base that is neither a module-level
    class of the module nor a name imported from swiftnb."""
    own = {n.name for n in tree.body if isinstance(n, ast.ClassDef)} | {'object'}
    own |= {a.asname or a.name for _, _, n in _imports(tree, mod) for a in getattr(n, 'names', [])}
    return [c for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
            and any(not (isinstance(b, ast.Name) and b.id in own) for b in c.bases)]

def _own_names(mods) -> set:
    """Names swiftnb defines: functions, classes, variables, attributes it sets on self/cls, and `_swiftnb*` marks it
    sets on other objects; not what the body of a subclass of another library's class defines (its overrides)."""
    own, skip = set(), set()
    for mod, tree in mods.items():
        for c in _foreign_classes(mod, tree):
            skip |= {id(b) for b in c.body} | {id(t) for b in c.body if isinstance(b, ast.Assign)
                                                 for x in b.targets for t in ast.walk(x)}
        for n in ast.walk(tree):
            if id(n) in skip: continue
            if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)): own.add(n.name)
            elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store): own.add(n.id)
            elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store) and (
                    n.attr.startswith('_swiftnb') or isinstance(n.value, ast.Name) and n.value.id in ('self', 'cls')):
                own.add(n.attr)
    return own

def foreign_private(mods) -> list:
    """['module:line name'] for each private name of another library used outside COMPAT: an attribute (`x._y`), a
    getattr/hasattr/setattr of one, an import of one (or from a private module), and a private method defined in a
    subclass of another library's class (an override of its internals)."""
    own, out = _own_names(mods), []
    for mod, tree in mods.items():
        if mod == COMPAT: continue
        foreign = [id(c) for c in _foreign_classes(mod, tree)]
        for n in ast.walk(tree):
            hits = []
            if isinstance(n, ast.Attribute) and _private(n.attr) and n.attr not in own: hits = [n.attr]
            elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                  and n.func.id in ('getattr', 'hasattr', 'setattr', 'delattr') and len(n.args) > 1
                  and isinstance(n.args[1], ast.Constant) and isinstance(n.args[1].value, str)
                  and _private(n.args[1].value) and n.args[1].value not in own): hits = [repr(n.args[1].value)]
            elif isinstance(n, ast.ImportFrom) and not n.level and n.module and n.module.split('.')[0] not in (
                    'swiftnb', '__future__'):
                hits = [f'{n.module}.{a.name}' for a in n.names if _private(a.name)]
                hits += [n.module] if any(_private(p) for p in n.module.split('.')) else []
            elif isinstance(n, ast.Import):
                hits = [a.name for a in n.names if any(_private(p) for p in a.name.split('.'))]
            elif isinstance(n, ast.ClassDef) and id(n) in foreign:
                hits = [f'{n.name}.{b.name}' for b in n.body if isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef))
                        and _private(b.name)]
                hits += [f'{n.name}.{t.id}' for b in n.body if isinstance(b, ast.Assign) for x in b.targets
                         for t in ast.walk(x) if isinstance(t, ast.Name) and _private(t.id)]
            out += [f'{mod}:{n.lineno} {h}' for h in hits if h.strip("'").rsplit('.', 1)[-1] not in ALLOW]
    return out

def undocumented(mods):
    "['module.function(param, ...)'] for public functions and methods (in __all__) with parameters lacking docments."
    from fastcore.docments import docments
    sys.path.insert(0, str(ROOT))
    out = []
    for mod in mods:
        m = importlib.import_module(mod)
        for name in getattr(m, '__all__', []):
            obj = getattr(m, name, None)
            if getattr(obj, '__module__', None) != mod: continue
            fns = [(name, obj)] if inspect.isfunction(obj) else []
            if inspect.isclass(obj):
                fns += [(f'{name}.{k}', v) for k, v in vars(obj).items()
                        if inspect.isfunction(v) and (not k.startswith('_') or k == '__init__')]
            for qual, f in fns:
                try: docs = docments(f)
                except Exception: continue   # signature it can't read (e.g. a C builtin)
                miss = [p for p, d in docs.items() if d is None and p not in ('self', 'cls', 'return')
                        and inspect.signature(f).parameters.get(p) is not None
                        and inspect.signature(f).parameters[p].kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                                             inspect.Parameter.VAR_KEYWORD)]
                if miss: out.append(f"{mod}.{qual}({', '.join(miss)})")
    return out

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--check', action='store_true', help='exit 1 when a limit is broken')
    ap.add_argument('--where', action='store_true', help='list every offence')
    a = ap.parse_args()
    rows, all_lines, problems = [], [], []
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        cells = code_cells(nb)
        sizes = [len(c.splitlines()) for c in cells]
        long = [(i, ln) for i, c in enumerate(cells) for ln in c.splitlines() if len(ln) > LIMITS['line']]
        semi = [(i, s) for i, c in enumerate(cells) for s in semicolons(c)]
        all_lines += sizes
        rows.append((nb.name, len(cells), statistics.median(sizes) if sizes else 0, max(sizes, default=0),
                     sum(s > LIMITS['cell'] for s in sizes), len(long), len(semi)))
        problems += [f'{nb.name} cell {i}: {s} lines' for i, s in enumerate(sizes) if s > LIMITS['cell']]
        problems += [f'{nb.name} cell {i}: line of {len(ln)}' for i, ln in long]
        problems += [f'{nb.name} cell {i} line {s}: semicolons' for i, s in semi]
    print(f"{'notebook':<24}{'cells':>6}{'median':>8}{'max':>6}{'>60':>5}{'>120ch':>8}{'  ;':>5}")
    for r in rows: print(f'{r[0]:<24}{r[1]:>6}{r[2]:>8}{r[3]:>6}{r[4]:>5}{r[5]:>8}{r[6]:>5}')
    mods = modules()
    priv, cyc, undoc = private_imports(mods), cycles(mods), undocumented(mods)
    foreign = foreign_private(mods)
    med = statistics.median(all_lines)
    print(f"\nall: {len(all_lines)} code cells, median {med} lines, max {max(all_lines)}, "
          f"{sum(r[4] for r in rows)} over {LIMITS['cell']}; {sum(r[5] for r in rows)} lines over {LIMITS['line']} "
          f"characters; {sum(r[6] for r in rows)} semicolon lines; {len(priv)} private imports across modules; "
          f"{len(cyc)} import cycles; {len(undoc)} public functions with undocumented parameters; {len(foreign)} private "
          f"names of other libraries outside {COMPAT}")
    if med > LIMITS['median']: problems.append(f'median cell {med} lines > {LIMITS["median"]}')
    problems += [f'private import {p}' for p in priv] + [f'cycle {" -> ".join(c)}' for c in cyc]
    problems += [f'no docments: {u}' for u in undoc]
    problems += [f'private name of another library outside {COMPAT} (move it there, nbs/00a_compat): {f}' for f in foreign]
    if a.where:
        for p in problems: print(' ', p)
    if a.check and problems:
        print(f'{len(problems)} problems (--where lists them)')
        return 1
    return 0

if __name__ == '__main__': sys.exit(main())
