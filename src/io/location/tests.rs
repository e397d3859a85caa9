use super::*;
use proptest::prelude::*;

fn local(s: &str) -> PathBuf {
    match Location::parse(s).unwrap() {
        Location::Local(p) => p,
        other => panic!("{s}: {other:?}"),
    }
}

fn object_id(s: &str) -> Identity {
    let l = Location::parse(s).unwrap();
    assert!(matches!(l, Location::Object(_)), "{s}");
    l.identity()
}

#[test]
fn file_urls_follow_rfc_8089() {
    assert_eq!(
        local("file:///data/a%20b.parquet"),
        Path::new("/data/a b.parquet")
    );
    assert_eq!(
        local("file://localhost/data/a.parquet"),
        Path::new("/data/a.parquet")
    );
    assert_eq!(
        local("FILE://LOCALHOST/data/a.parquet"),
        Path::new("/data/a.parquet")
    );
    assert_eq!(local("file:/data/%63al.json"), Path::new("/data/cal.json"));
    assert_eq!(
        local("File:///x/%zz"),
        Path::new("/x/%zz"),
        "a malformed escape is kept"
    );
    // A plain path is kept as written, escapes and all.
    assert_eq!(local("data/a%20b.parquet"), Path::new("data/a%20b.parquet"));
    for bad in [
        "file://otherhost/data/a.parquet",
        "file:relative.parquet",
        "file:///a.parquet?x=1",
        "file:///a.parquet#frag",
    ] {
        let e = Location::parse(bad).unwrap_err().to_string();
        assert!(e.contains(bad), "{e}");
    }
}

#[test]
fn object_urls_fold_aliases_case_and_double_slashes() {
    let id = object_id("s3://b/emb/x.parquet");
    for s in [
        "s3a://b/emb/x.parquet",
        "S3://b/emb/x.parquet",
        "s3n://B/emb/x.parquet",
        "s3://b/emb//x.parquet",
        "s3://b//emb/x.parquet/",
        "s3://b/%65mb/x.parquet",
    ] {
        assert_eq!(object_id(s), id, "{s}");
    }
    assert_ne!(object_id("gs://b/emb/x.parquet"), id);
    assert_ne!(object_id("s3://c/emb/x.parquet"), id);
    assert_eq!(
        object_id("abfss://cont@acct.dfs.core.windows.net/k"),
        object_id("az://cont/k")
    );
    assert_eq!(object_id("gcs://b/k"), object_id("gs://b/k"));
    for bad in [
        "s3://b/emb/./x.parquet",
        "s3://b/emb/../x.parquet",
        "s3://b/%2E%2E/x.parquet",
        "s3://b/x.parquet?x=1",
        "s3://b/x.parquet#f",
        "s3:///x.parquet",
        "ftp://b/x.parquet",
    ] {
        assert_err!(
            Location::parse(bad),
            crate::Error::BadArgument { .. },
            "{bad} accepted"
        );
    }
}

#[test]
fn containment() {
    let d = object_id("s3://b/emb");
    assert!(d.contains(&object_id("s3a://b/emb/x.parquet")));
    assert!(!d.contains(&object_id("s3://b/embx/x.parquet")));
    assert!(object_id("s3://b").contains(&object_id("s3://b/any/thing")));
    let l = Identity::Local(PathBuf::from("/a/b"));
    assert!(l.contains(&Identity::Local(PathBuf::from("/a/b/c"))));
    assert!(!l.contains(&Identity::Local(PathBuf::from("/a/bc"))));
    assert!(!l.contains(&d));
}

#[test]
fn the_guard_refuses_outputs_in_or_over_inputs() {
    let d = tempfile::tempdir().unwrap();
    let q = d.path().join("q");
    std::fs::create_dir(&q).unwrap();
    let f = q.join("qry.parquet");
    std::fs::write(&f, b"x").unwrap();
    let mut inputs = Inputs::new();
    inputs.add_spelling(&q.display().to_string()).unwrap();
    inputs.add_listed(&f);
    let refused = |out: &str, dir: bool| {
        let e = inputs.check_spelling(out, dir).unwrap_err();
        assert!(matches!(e, Error::OutputIsInput { .. }), "{out}: {e}");
    };
    refused(&f.display().to_string(), false);
    refused(&format!("file://{}", f.display()), false);
    refused(&q.join("new.parquet").display().to_string(), false);
    refused(&d.path().display().to_string(), true);
    inputs
        .check_spelling(&d.path().join("out.parquet").display().to_string(), false)
        .unwrap();
    // Objects: the key and everything below a prefix input.
    let mut inputs = Inputs::new();
    inputs.add_spelling("s3a://b/emb").unwrap();
    for out in [
        "s3://b/emb",
        "S3://b/emb//x.parquet",
        "s3://b/emb/new.parquet",
    ] {
        assert_err!(
            inputs.check_spelling(out, false),
            crate::Error::OutputIsInput { .. },
            "{out}"
        );
    }
    assert_err!(
        inputs.check_spelling("s3://b", true),
        crate::Error::OutputIsInput { .. }
    );
    inputs
        .check_spelling("s3://b/other.parquet", false)
        .unwrap();
    inputs.check_spelling("gs://b/emb", false).unwrap();
}

/// `s` with each byte percent-encoded where `mask` says so (a `/` stays, as a separator).
fn encode(s: &str, mask: &[bool]) -> String {
    let mut out = String::new();
    for (i, b) in s.bytes().enumerate() {
        if b != b'/' && mask.get(i % mask.len().max(1)).copied().unwrap_or(false) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// A spelling of the local file `sub/x.parquet` under `root` (which holds `link`, a
/// symlink to `sub`), chosen by `way`.
fn local_spelling(root: &Path, way: u8, mask: &[bool], upper: bool) -> String {
    let r = root.display().to_string();
    let path = match way % 4 {
        0 => format!("{r}/sub/x.parquet"),
        1 => format!("{r}/sub/./x.parquet"),
        2 => format!("{r}/sub/../sub/x.parquet"),
        _ => format!("{r}/link/x.parquet"),
    };
    let scheme = if upper { "FILE" } else { "file" };
    match (way / 4) % 4 {
        0 => path,
        1 => format!("{scheme}://{}", encode(&path, mask)),
        2 => format!("{scheme}://localhost{}", encode(&path, mask)),
        _ => format!("{scheme}:{}", encode(&path, mask)),
    }
}

/// A spelling of `s3://bucket/emb/x.parquet` chosen by `way`.
fn object_spelling(way: u8, mask: &[bool], upper: bool) -> String {
    let scheme = ["s3", "s3a", "s3n", "S3", "S3A"][way as usize % 5];
    let bucket = if upper { "Bucket" } else { "bucket" };
    let key = match (way / 5) % 3 {
        0 => "emb/x.parquet".to_string(),
        1 => "emb//x.parquet".to_string(),
        _ => "/emb/x.parquet/".to_string(),
    };
    format!("{scheme}://{bucket}/{}", encode(&key, mask))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Every spelling of one location is refused as an output of a command reading another
    /// spelling of it, either way round.
    #[test]
    fn spellings_of_one_location_collide(
        a in 0u8..16, b in 0u8..16,
        ma in proptest::collection::vec(any::<bool>(), 1..6),
        mb in proptest::collection::vec(any::<bool>(), 1..6),
        ua in any::<bool>(), ub in any::<bool>(),
        oa in 0u8..15, ob in 0u8..15,
    ) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/x.parquet"), b"x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(d.path().join("sub"), d.path().join("link")).unwrap();
        let input = local_spelling(d.path(), a, &ma, ua);
        let output = local_spelling(d.path(), b, &mb, ub);
        let mut inputs = Inputs::new();
        inputs.add_spelling(&input).unwrap();
        let e = inputs.check_spelling(&output, false);
        prop_assert!(e.is_err_and(|e| matches!(e.kind(), Error::OutputIsInput { .. })), "{output} not refused as an output over {input}");

        let input = object_spelling(oa, &ma, ua);
        let output = object_spelling(ob, &mb, ub);
        let mut inputs = Inputs::new();
        inputs.add_spelling(&input).unwrap();
        prop_assert!(inputs.check_spelling(&output, false).is_err_and(|e| matches!(e.kind(), Error::OutputIsInput { .. })), "{output} over {input}");
        prop_assert!(inputs.check_spelling(&output, true).is_err_and(|e| matches!(e.kind(), Error::OutputIsInput { .. })), "{output} over {input}");
    }
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
    assert!(check_not_input(&d.path().join("in"), true, &[&a])
        .is_err_and(|e| matches!(e.kind(), Error::OutputIsInput { .. })));
    assert!(check_not_input(d.path(), true, &[&a])
        .is_err_and(|e| matches!(e.kind(), Error::OutputIsInput { .. })));
    // A directory output that is an input directory.
    assert!(
        check_not_input(&d.path().join("in"), true, &[d.path().join("in")])
            .is_err_and(|e| matches!(e.kind(), Error::OutputIsInput { .. }))
    );
    // Beside the input is fine; a file output inside an input directory too.
    check_not_input(&d.path().join("out"), true, &[&a]).unwrap();
    check_not_input(&d.path().join("in/b.parquet"), false, &[&a]).unwrap();
}
