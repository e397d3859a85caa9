//! Path resolution, and the "an output is never an input" guard for outputs given as paths
//! (see [`super::location`] for the guard itself).

use std::path::{Component, Path, PathBuf};

/// The absolute path the OS would open for `p`: symlinks and `.`/`..` resolved for the part
/// that exists, the rest appended as written (so a target that does not exist yet still
/// compares equal to the path it will have).
pub fn resolve(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(d) => d.join(p),
            Err(_) => p.to_path_buf(),
        }
    };
    let comps: Vec<Component> = abs.components().collect();
    for i in (1..=comps.len()).rev() {
        let prefix: PathBuf = comps[..i].iter().collect();
        if let Ok(mut c) = prefix.canonicalize() {
            for comp in &comps[i..] {
                match comp {
                    Component::ParentDir => {
                        c.pop();
                    }
                    Component::Normal(x) => c.push(x),
                    _ => {}
                }
            }
            return c;
        }
    }
    abs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_sees_through_symlinks_and_dots() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real.parquet");
        std::fs::write(&real, b"x").unwrap();
        #[cfg(unix)]
        {
            let link = d.path().join("link.parquet");
            std::os::unix::fs::symlink(&real, &link).unwrap();
            assert_eq!(resolve(&link), resolve(&real));
        }
        let sub = d.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert_eq!(resolve(&sub.join("../real.parquet")), resolve(&real));
        // Not existing yet: the existing prefix is resolved, the rest appended.
        assert_eq!(
            resolve(&sub.join("new/../x.json")),
            resolve(&sub).join("x.json")
        );
    }
}
