//! The command line as UTF-8: an argument that is not UTF-8 is refused with a message naming
//! it and saying what to do (embquant names files by UTF-8 paths and URLs: the lineage a
//! Parquet footer records, object-store keys and DataFusion table URLs are all UTF-8).

use std::ffi::OsString;

/// `args` (the program name first) as strings, or the message refusing the first argument
/// that is not UTF-8.
pub(crate) fn utf8_args(args: impl IntoIterator<Item = OsString>) -> Result<Vec<String>, String> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| match a.into_string() {
            Ok(s) => Ok(s),
            Err(a) if i == 0 => Ok(a.to_string_lossy().into_owned()),
            Err(a) => Err(format!(
                "argument {i} ({:?}) is not valid UTF-8: embquant names files by UTF-8 paths and URLs \
                 (the lineage in its Parquet footers, object-store keys and SQL table URLs are UTF-8); \
                 rename the file, or give a UTF-8 symlink to it",
                a.to_string_lossy()
            )),
        })
        .collect()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn a_non_utf8_argument_is_refused_by_position() {
        let e = utf8_args([
            OsString::from("embquant"),
            OsString::from("inspect"),
            OsString::from_vec(b"caf\xe9.parquet".to_vec()),
        ])
        .unwrap_err();
        assert!(
            e.starts_with("argument 2 (\"caf\u{fffd}.parquet\") is not valid UTF-8"),
            "{e}"
        );
        assert!(e.contains("UTF-8 symlink"), "{e}");
        let ok = utf8_args([OsString::from("embquant"), OsString::from("café.parquet")]).unwrap();
        assert_eq!(ok[1], "café.parquet");
    }
}
