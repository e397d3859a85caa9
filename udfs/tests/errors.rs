//! Library errors reach SQL typed: `DataFusionError::External` holds an
//! `embquant_udfs::args::FunctionError` whose `source` is the `embquant::Error`, so a
//! caller can match its kind, and its message is the library's (the CLI's), prefixed by
//! the function.

use datafusion::prelude::SessionContext;
use embquant_udfs::args::FunctionError;

#[tokio::test]
async fn a_null_item_arrives_as_the_library_error_kind() {
    let ctx = SessionContext::new_with_config(embquant_udfs::session_config());
    embquant_udfs::register_all(&ctx);
    let e = ctx
        .sql("SELECT l2_normalize([1.0, NULL, 2.0])")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap_err();
    let f = FunctionError::find(&e).unwrap_or_else(|| panic!("not a library error: {e:?}"));
    assert_eq!(f.function, "l2_normalize");
    assert!(
        matches!(
            f.source.kind(),
            embquant::Error::NullItem { row: 0, dim: 1 }
        ),
        "{:?}",
        f.source
    );
    // The library's own message, as the CLI would print it, inside the SQL error.
    let lib = embquant::Error::NullItem { row: 0, dim: 1 }.to_string();
    assert!(e.to_string().contains(&lib), "{e} lacks {lib}");
}
