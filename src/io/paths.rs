//! Path resolution, and the "an output is never an input" guard for outputs given as paths
//! (see [`super::location`] for the guard itself).

use std::path::{Component, Path, PathBuf};

use crate::error::Result;

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

/// Refuses an output that would replace or delete one of `inputs` (input files as a
/// [`Store`](super::source::Store) lists them, a calibration, queries, a reference): the
/// output is an input in another spelling, or, for a directory output, an input lies inside
/// it. [`super::location::Inputs`] with the files as listed.
pub fn check_not_input<P: AsRef<Path>>(output: &Path, is_dir: bool, inputs: &[P]) -> Result<()> {
    let mut guard = super::location::Inputs::new();
    for input in inputs {
        guard.add_listed(input.as_ref());
    }
    let spelled = output.display().to_string();
    let loc = if super::is_url(&spelled) || spelled.to_ascii_lowercase().starts_with("file:") {
        super::location::Location::parse(&spelled)?
    } else {
        super::location::Location::Local(output.to_path_buf())
    };
    guard.check(&loc, is_dir, &spelled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

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

    #[test]
    fn outputs_over_inputs_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("in/a.parquet");
        std::fs::create_dir_all(a.parent().unwrap()).unwrap();
        std::fs::write(&a, b"x").unwrap();
        // The same file, spelled differently.
        let e = check_not_input(&d.path().join("in/../in/a.parquet"), false, &[&a]).unwrap_err();
        assert!(matches!(e, Error::OutputIsInput { .. }), "{e}");
        // A directory output holding an input.
        assert!(check_not_input(&d.path().join("in"), true, &[&a]).is_err());
        assert!(check_not_input(d.path(), true, &[&a]).is_err());
        // A directory output that is an input directory.
        assert!(check_not_input(&d.path().join("in"), true, &[d.path().join("in")]).is_err());
        // Beside the input is fine; a file output inside an input directory too.
        check_not_input(&d.path().join("out"), true, &[&a]).unwrap();
        check_not_input(&d.path().join("in/b.parquet"), false, &[&a]).unwrap();
    }
}
