"""Import cycles between the files of Rust crates.

Reads the `crate::..` and `super::..` paths of every module file (outside its
`#[cfg(test)] mod tests`), resolves each to the module file it names, and reports every
strongly connected group of files that import one another (a module's ancestors are not
counted: a file may use what its parent module declares). Exits 1 when there is a cycle.

Usage: python3 .ci/cycles.py SRC_DIR [SRC_DIR ...]
"""
import os
import re
import sys


def module_files(root):
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(dirpath, name)
                parts = tuple(os.path.relpath(path, root)[:-3].split("/"))
                if parts[-1] in ("mod", "lib", "main"):
                    parts = parts[:-1]
                files[parts] = path
    return files


def edges_of(files):
    def resolve(path):
        for n in range(len(path), -1, -1):
            if tuple(path[:n]) in files:
                return tuple(path[:n])
        return None

    edges = {m: set() for m in files}
    for mod, path in files.items():
        src = open(path, encoding="utf-8").read()
        src = re.split(r"#\[cfg\(test\)\]\s*(?:pub(?:\(crate\))?\s+)?mod tests", src)[0]
        src = re.sub(r"//[^\n]*", "", src)
        is_dir = os.path.basename(path) in ("mod.rs", "lib.rs", "main.rs")
        for m in re.finditer(r"\b(crate|super)((?:::\w+)+)", src):
            segs = m.group(2).split("::")[1:]
            if m.group(1) == "crate":
                base = []
            else:
                base = list(mod) if is_dir else list(mod[:-1])
                while segs and segs[0] == "super":
                    base, segs = base[:-1], segs[1:]
            target = resolve(base + segs)
            if target is not None and target != mod[: len(target)]:
                edges[mod].add(target)
    return edges


def strongly_connected(edges):
    index, low, stack, on, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return groups


def main(roots):
    found = 0
    for root in roots:
        edges = edges_of(module_files(root))
        for group in strongly_connected(edges):
            found += 1
            name = lambda m: "/".join(m) or "lib"
            print(f"{root}: import cycle: " + " <-> ".join(name(m) for m in group))
            for a in group:
                for b in sorted(edges[a] & set(group)):
                    print(f"    {name(a)} -> {name(b)}")
    print(f"{found} import cycle(s) in {len(roots)} crate(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
