#!/usr/bin/env python3
"""Does `maturin develop` (the Python package built alone) reuse what `cargo test --workspace`
built? Compares the two builds' unit graphs (package, target, mode, features, profile
settings) and lists every unit the Python build would compile differently. Exit status 1
when one differs: add the missing features to unify/Cargo.toml ([dependencies] for the
target, [build-dependencies] for build scripts and proc macros).

    python3 unify/check.py

Uses cargo's unit graph (`--unit-graph`, unstable: enabled here with RUSTC_BOOTSTRAP=1 for
this read-only query; nothing is built).
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def units(*args: str) -> dict:
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    out = subprocess.run(
        ["cargo", *args, "--unit-graph", "-Z", "unstable-options"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout
    found: dict = {}
    for u in json.loads(out)["units"]:
        profile = dict(u["profile"])
        profile.pop("name")  # dev and test share artifacts whose settings are equal
        key = (u["pkg_id"], u["target"]["name"], u["mode"])
        found.setdefault(key, set()).add(
            (tuple(sorted(u["features"])), json.dumps(profile, sort_keys=True))
        )
    return found


def main() -> int:
    workspace = units("test", "--workspace", "--no-run")
    python = units("rustc", "-p", "embquant-python", "--lib")
    differ = []
    for key, variants in sorted(python.items()):
        if key not in workspace:
            continue  # only the Python build has it (pyo3, datafusion-ffi, ...): built once
        for features, profile in variants:
            same_side = [f for f, p in workspace[key] if p == profile]
            # No workspace unit with these settings: a new unit (e.g. a crate the workspace
            # builds only for build scripts), compiled once for the extension, no cascade.
            if same_side and features not in same_side:
                theirs = sorted(workspace[key])
                differ.append(f"{key[0].split('#')[-1]} {key[1]} ({key[2]}): {features}\n"
                              f"    profile {profile}\n    workspace: {theirs}")
    # The core and the extension are built with their own profile settings (Cargo.toml):
    # those, and what depends on them, are expected to differ.
    expected = ("embquant@", "embquant-udfs@", "embquant-feature-unify@")
    unexpected = [d for d in differ if not d.split(" ")[0].startswith(expected)]
    for d in unexpected:
        print(d)
    print(f"{len(unexpected)} unit(s) differ beyond the workspace's own crates")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
