"""The package's import graph (issue 23): cycles among top-level imports and among all imports (function-level
included), and imports that point up or sideways across the layers of docs/ARCHITECTURE.md. Run from the
repository root: `python tools/import_graph.py` (empty lists: clean; the package's lazy DreamTextPipeline shortcut is the one
documented exception)."""
import ast, pathlib, collections
root = pathlib.Path("dreamtext")
mods = {}
for f in root.rglob("*.py"):
    name = ".".join(f.with_suffix("").parts)
    if name.endswith(".__init__"): name = name[:-9]
    mods[name] = f
def resolve(cur, node):
    if isinstance(node, ast.ImportFrom):
        base = cur.split(".")
        pkg = base[:-1] if not mods[cur].name == "__init__.py" else base
        if node.level:
            pkg = pkg[:len(pkg) - (node.level - 1)]
            mod = ".".join(pkg + ([node.module] if node.module else []))
        else:
            mod = node.module
        out = []
        for a in node.names:
            cand = mod + "." + a.name
            out.append(cand if cand in mods else mod)
        return out
    return [a.name for a in node.names]
edges = collections.defaultdict(set); top = collections.defaultdict(set)
for m, f in mods.items():
    tree = ast.parse(f.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for t in resolve(m, node):
                if t in mods and t != m:
                    edges[m].add(t)
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for t in resolve(m, node):
                if t in mods and t != m: top[m].add(t)
# cycles among top-level imports
def cycles(g):
    found=[]; state={}
    def dfs(u, path):
        state[u]=1; path.append(u)
        for v in g[u]:
            if state.get(v)==1: found.append(path[path.index(v):]+[v])
            elif not state.get(v): dfs(v, path)
        path.pop(); state[u]=2
    for u in list(mods): 
        if not state.get(u): dfs(u, [])
    return found
print("top-level cycles:", cycles(top)[:5])
print("all-import cycles:", [c for c in cycles(edges) if "dreamtext" not in c[:1] or True][:8])
layer = {"errors":0,"config":0,"config_sections":0,"config_ranges":0,"charset":0,"io_utils":0,"pixels":0,"sample_options":0,"visualize":0,
         "model":1,"diffusion":1,"data":1,"train":2,"edit":2,"evaluation":3,"web":4,"commands":5,"cli":5,"pipeline":5}
def L(m):
    p = m.split(".")
    if len(p)==1: return 0
    return layer.get(p[1], 0)
up=[(a,b) for a in edges for b in edges[a] if L(b)>L(a) or (L(a)==2 and L(b)==2 and a.split('.')[1]!=b.split('.')[1])]
print("upward/sideways imports:", sorted(up)[:20])
