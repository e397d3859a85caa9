//! The command line as UTF-8: an argument that is not UTF-8 but names a local file or
//! directory (or a new one in an existing directory) is passed on as the `file://` URL of
//! that path, its bytes percent-escaped (RFC 8089), which every command reads as that path;
//! any other non-UTF-8 argument is refused with a message naming it.

use std::ffi::OsString;
use std::path::Path;

/// `args` (the program name first) with non-UTF-8 paths spelled as `file://` URLs.
pub(crate) fn utf8_args(args: impl IntoIterator<Item = OsString>) -> Result<Vec<String>, String> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| match a.into_string() {
            Ok(s) => Ok(s),
            Err(a) if i == 0 => Ok(a.to_string_lossy().into_owned()),
            Err(a) => as_file_url(&a).ok_or_else(|| {
                format!(
                    "argument {i} ({:?}) is not valid UTF-8 and names no local file or directory; \
                     values and URLs must be UTF-8 (a local path may not be, but must exist or lie in \
                     an existing directory)",
                    a.to_string_lossy()
                )
            }),
        })
        .collect()
}

/// `--opt=PATH` or `PATH`, with the path as a `file://` URL, if it names a local file or
/// directory, or a new entry of an existing directory.
#[cfg(unix)]
fn as_file_url(a: &std::ffi::OsStr) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = a.as_bytes();
    let (flag, value) = match bytes.iter().position(|&b| b == b'=') {
        Some(i) if bytes.starts_with(b"--") => (&bytes[..=i], &bytes[i + 1..]),
        _ => (&b""[..], bytes),
    };
    let flag = std::str::from_utf8(flag).ok()?;
    let path = std::path::absolute(Path::new(std::ffi::OsStr::from_bytes(value))).ok()?;
    let exists = path.symlink_metadata().is_ok() || path.parent().is_some_and(|p| p.is_dir());
    if !exists {
        return None;
    }
    let mut url = format!("{flag}file://");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    Some(url)
}

#[cfg(not(unix))]
fn as_file_url(_: &std::ffi::OsStr) -> Option<String> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn non_utf8_paths_become_file_urls_and_other_values_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut name = d.path().as_os_str().to_owned().into_vec();
        name.extend_from_slice(b"/caf\xe9 1%.parquet");
        std::fs::write(OsString::from_vec(name.clone()), b"x").unwrap();
        let mut flag = b"--report=".to_vec();
        flag.extend_from_slice(&name);
        let out = utf8_args([
            OsString::from("embquant"),
            OsString::from("inspect"),
            OsString::from_vec(name.clone()),
            OsString::from_vec(flag),
        ])
        .unwrap();
        let want = format!("file://{}/caf%E9%201%25.parquet", d.path().display());
        assert_eq!(out[1], "inspect");
        assert_eq!(out[2], want);
        assert_eq!(out[3], format!("--report={want}"));
        // A non-UTF-8 value that is no path: refused, naming the argument.
        let e = utf8_args([
            OsString::from("embquant"),
            OsString::from_vec(b"/no/such/dir/\xff".to_vec()),
        ])
        .unwrap_err();
        assert!(
            e.contains("argument 1") && e.contains("not valid UTF-8"),
            "{e}"
        );
    }
}
