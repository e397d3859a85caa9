//! The crate's error type.

use arrow_schema::{ArrowError, DataType};

/// Everything that can go wrong in `embquant`.
///
/// Variants name the problem and, for bad data, the (0-based, logical) row and the
/// dimension where it was found, so a caller can point the user at the offending value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The array is not a vector column this crate can read.
    #[error("unsupported vector type: expected FixedSizeList<Float16|Float32|Float64, D> or List<Float32> with equal-length rows, got {found}")]
    UnsupportedType {
        /// The data type that was passed.
        found: DataType,
    },
    /// A code array of the wrong type was passed to a decoder.
    #[error("unsupported code type: expected {expected}, got {found}")]
    UnsupportedCodeType {
        /// What the decoder reads.
        expected: String,
        /// The data type that was passed.
        found: DataType,
    },
    /// A value is NaN or infinite.
    #[error("non-finite value {value} at row {row}, dimension {dim}")]
    NonFinite {
        /// Row index within the array.
        row: usize,
        /// Dimension index within the vector.
        dim: usize,
        /// The offending value.
        value: f64,
    },
    /// A vector that is itself valid holds a null item.
    #[error("null item at row {row}, dimension {dim}: vectors may be null, their items may not")]
    NullItem {
        /// Row index within the array.
        row: usize,
        /// Dimension index within the vector.
        dim: usize,
    },
    /// A `List` row has a different length than the others.
    #[error("ragged list: row {row} has {found} items, expected {expected}")]
    RaggedList {
        /// First offending row.
        row: usize,
        /// Its length.
        found: usize,
        /// The length of the rows before it (or the calibration's dimension).
        expected: usize,
    },
    /// Vectors and calibration (or two operands) disagree on the dimension.
    #[error("dimension mismatch: {context} has dimension {found}, expected {expected}")]
    DimensionMismatch {
        /// What had the wrong dimension.
        context: String,
        /// The expected dimension.
        expected: usize,
        /// The dimension found.
        found: usize,
    },
    /// A calibration was requested from statistics that saw no (non-null) rows.
    #[error("cannot calibrate from zero rows: every row was null or the input was empty")]
    EmptyCalibration,
    /// A search over a corpus without rows.
    #[error("the corpus ({files}) has no rows: there is nothing to search")]
    EmptyCorpus {
        /// The corpus files, or how many.
        files: String,
    },
    /// The calibration lacks something the operation needs.
    #[error("calibration is missing {0}")]
    MissingCalibrationData(&'static str),
    /// A calibration document is malformed or inconsistent.
    #[error("invalid calibration: {0}")]
    InvalidCalibration(String),
    /// An argument or option (named as its front door spells it: `scheme`, `rabitq_bits`,
    /// `tier`, `k`...) has a value embquant cannot use.
    #[error("invalid {name}: {problem}")]
    BadArgument {
        /// The argument or option.
        name: String,
        /// What is wrong with its value.
        problem: String,
    },
    /// An operation was given nothing to work on (no input files, no rows, no scheme).
    #[error("nothing to {action}: {what}")]
    EmptyInput {
        /// What the operation does (`quantize`, `search`, `measure`).
        action: &'static str,
        /// What was empty.
        what: String,
    },
    /// An output path cannot be written as asked (an existing file where a directory is
    /// expected, an input column the output would shadow...). See also
    /// [`Error::OutputIsInput`] and [`Error::ForeignOutput`].
    #[error("output {output}: {problem}")]
    OutputConflict {
        /// The output (path, URL or column).
        output: String,
        /// What conflicts.
        problem: String,
    },
    /// An object store (or a URL naming one) cannot be set up: an unknown scheme, malformed
    /// settings, a bad glob.
    #[error("{url}: {problem}")]
    StoreConfig {
        /// The URL or pattern.
        url: String,
        /// What is wrong.
        problem: String,
    },
    /// A number in a recipe (field metadata written by embquant, or a tampered copy) is
    /// outside what embquant writes and reads: the bounds are the constants of
    /// [`crate::metadata`] ([`crate::calibration::MAX_DIMS`],
    /// [`crate::codec::rabitq::MAX_ROUNDS`], ...), checked before any codec is built.
    #[error("recipe {recipe:?}: {field} = {value} is out of bounds (allowed: {allowed}); the metadata is corrupt or was edited")]
    RecipeOutOfRange {
        /// The recipe (its column name).
        recipe: String,
        /// The field, e.g. `rotation.rounds`.
        field: &'static str,
        /// The value found.
        value: String,
        /// What is allowed, e.g. `1..=16`.
        allowed: String,
    },
    /// Two code columns scored together (the extra bits of multi-bit RaBitQ and their sign
    /// column) were not made by one encoding: their recipes differ in `field`.
    #[error("column {column:?} cannot be scored with column {other:?}: {field} is {found} in {column:?} and {expected} in {other:?}; the extra bits and their sign bits must come from one encoding (re-quantize both with one `--scheme rabitqB`)")]
    RecipeMismatch {
        /// The column checked (the extra bits).
        column: String,
        /// The column it is scored with (the sign bits).
        other: String,
        /// The recipe field that differs (`rotation.seed`, `dims`, `sign_column` ...).
        field: &'static str,
        /// Its value in `column`.
        found: String,
        /// Its value in `other`.
        expected: String,
    },
    /// A stored code holds a float (a RaBitQ factor, an f16 value) that is NaN, infinite or
    /// outside what its encoder writes: a corrupt or tampered file.
    #[error("row {row}: the code's {field} is {value}, which no encoder writes (it must be finite{rule}); the file is corrupt or was edited")]
    BadCode {
        /// Row, counted from the start of its file (or corpus).
        row: u64,
        /// What holds it (`norm`, `ip`, `scale`, `ip_ex`, `value at dimension 3`).
        field: String,
        /// The value found.
        value: f64,
        /// What else it must be (`" and >= 0"`), or empty.
        rule: &'static str,
    },
    /// A search asked for more results than the corpus has rows (or for none).
    #[error("k = {k} is outside 1..={max}: the corpus has {max} rows, and a top-k of more rows than that cannot be searched (or certified); ask for at most {max}")]
    KOutOfRange {
        /// The k asked for.
        k: usize,
        /// The largest k the corpus can answer (its rows).
        max: usize,
    },
    /// A table or file lacks a column the operation needs, or holds it in another form
    /// (e.g. no code columns for a tier, the float column dropped, an id column that is not
    /// an integer).
    #[error("{0}")]
    Schema(String),
    /// A value in the data cannot be used (an id beyond Int64, a NaN in a vector the
    /// operation cannot skip).
    #[error("row {row}: {problem}")]
    BadValue {
        /// Row, counted from the start of its file or table.
        row: u64,
        /// What is wrong with it.
        problem: String,
    },
    /// Decoding rows of a Parquet file failed (a corrupt or truncated page).
    #[error("decoding row group {row_group} (rows from {row}): {cause}")]
    Decode {
        /// The row group.
        row_group: usize,
        /// The first row (of the file) of the batch that failed.
        row: u64,
        /// The decoder's message.
        cause: String,
    },
    /// Codes or statistics made under different calibrations (or recipes) were combined:
    /// they are only comparable under one calibration.
    #[error("calibration mismatch: {0}")]
    CalibrationMismatch(String),
    /// An error in one column of a table (ids, queries), with the column.
    #[error("column {column:?}: {error}")]
    InColumn {
        /// The column.
        column: String,
        /// What went wrong. Not a `source`: the message already includes it.
        error: Box<Error>,
    },
    /// A worker thread failed or a task was lost: a bug, not the input's fault.
    #[error("internal error: {0}")]
    Internal(String),
    /// A row that must hold a value is NULL (a query vector, an id).
    #[error("the {what} at row {row} is NULL (every {what} must be given)")]
    NullRow {
        /// What is NULL (`query`, `id`).
        what: &'static str,
        /// Row, counted from the start of its file or table.
        row: u64,
    },
    /// JSON (de)serialization failed.
    #[error("calibration JSON: {0}")]
    Json(serde_json::Error),
    /// An Arrow error.
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    /// A Parquet error (not a Parquet file, truncated, corrupt ...).
    #[error("parquet: {0}")]
    #[cfg(feature = "job")]
    Parquet(parquet::errors::ParquetError),
    /// An I/O error.
    #[error("{context}: {cause}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error. Not a `source`: the message already includes it, and
        /// error reporters would print it twice.
        cause: std::io::Error,
    },
    /// The vector column is not in the schema.
    #[error("no column {column:?} (columns: {available})")]
    MissingColumn {
        /// The column asked for.
        column: String,
        /// The columns that exist, comma-separated.
        available: String,
    },
    /// An error while reading or writing one file, with where it happened.
    #[error("{file}: column {column:?}: {error}")]
    InFile {
        /// The file.
        file: String,
        /// The column.
        column: String,
        /// What went wrong (rows are counted from the start of the file). Not a `source`:
        /// the message already includes it, and error reporters would print it twice.
        error: Box<Error>,
    },
    /// An output would replace or delete one of the command's inputs.
    #[error("refusing to write {output}: that would replace the input {input} ({reason}); choose another output path")]
    OutputIsInput {
        /// The output as given.
        output: String,
        /// The input it collides with, as given.
        input: String,
        /// How they collide: the same location (in another spelling), a directory output
        /// holding the input, an output inside an input directory or prefix.
        reason: &'static str,
    },
    /// A directory output exists and holds something embquant did not write.
    #[error("refusing to write the directory {dir}: it holds {entry:?}, which embquant did not write; choose a new or empty directory, or pass --overwrite to replace only embquant's own parts there")]
    ForeignOutput {
        /// The directory.
        dir: String,
        /// One entry embquant did not write.
        entry: String,
    },
    /// The job was cancelled (interrupt): nothing was written at the output path.
    #[error("cancelled")]
    Cancelled,
    /// A path embquant would read or replace is not a regular file: a device, a FIFO, a
    /// socket, a directory where a file is expected, or a symlink loop.
    #[error("{path} is {kind}, not a regular file; {rule}")]
    NotRegularFile {
        /// The path as given.
        path: String,
        /// What it is (`a character device`, `a FIFO`, `a symlink loop` ...).
        kind: &'static str,
        /// What embquant does instead (reads or writes only regular files).
        rule: &'static str,
    },
    /// A directory output's manifest (`_embquant_manifest.json`) lists an entry that is not
    /// a plain file name inside its directory (`../x.parquet`, `/etc/passwd`): the manifest
    /// is not used (not read, and nothing it lists is replaced).
    #[error("{manifest}: the entry {entry:?} {problem}; a manifest lists plain file names inside its own directory, so this one is not used")]
    BadManifest {
        /// The manifest file.
        manifest: String,
        /// The offending entry.
        entry: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl Error {
    /// [`Error::BadArgument`]: the argument `name` has a value embquant cannot use.
    pub fn bad_argument(name: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::BadArgument {
            name: name.into(),
            problem: problem.into(),
        }
    }

    /// [`Error::EmptyInput`]: nothing to `action`.
    pub fn empty_input(action: &'static str, what: impl Into<String>) -> Self {
        Error::EmptyInput {
            action,
            what: what.into(),
        }
    }

    /// [`Error::OutputConflict`]: `output` cannot be written as asked.
    pub fn output_conflict(output: impl std::fmt::Display, problem: impl Into<String>) -> Self {
        Error::OutputConflict {
            output: output.to_string(),
            problem: problem.into(),
        }
    }

    /// [`Error::StoreConfig`]: the store of `url` cannot be set up.
    pub fn store_config(url: impl std::fmt::Display, problem: impl std::fmt::Display) -> Self {
        Error::StoreConfig {
            url: url.to_string(),
            problem: problem.to_string(),
        }
    }

    /// Adds `offset` to the row this error names (for errors found in a batch that starts
    /// at row `offset` of its file).
    pub fn offset_rows(self, offset: u64) -> Self {
        self.map_rows(|r| r + offset as usize)
    }

    /// Maps the row this error names (e.g. from a sampled batch back to the file).
    pub fn map_rows(self, f: impl Fn(usize) -> usize) -> Self {
        match self {
            Error::NonFinite { row, dim, value } => Error::NonFinite {
                row: f(row),
                dim,
                value,
            },
            Error::NullItem { row, dim } => Error::NullItem { row: f(row), dim },
            Error::NullRow { what, row } => Error::NullRow {
                what,
                row: f(row as usize) as u64,
            },
            Error::BadValue { row, problem } => Error::BadValue {
                row: f(row as usize) as u64,
                problem,
            },
            Error::BadCode {
                row,
                field,
                value,
                rule,
            } => Error::BadCode {
                row: f(row as usize) as u64,
                field,
                value,
                rule,
            },
            Error::InColumn { column, error } => Error::InColumn {
                column,
                error: Box::new(error.map_rows(f)),
            },
            Error::RaggedList {
                row,
                found,
                expected,
            } => Error::RaggedList {
                row: f(row),
                found,
                expected,
            },
            other => other,
        }
    }

    /// Wraps the error with its file and column (an error that already names its column
    /// keeps that column: it is the more precise one).
    pub fn in_file(self, file: impl std::fmt::Display, column: &str) -> Self {
        match self {
            e @ Error::InFile { .. } => e,
            Error::InColumn { column, error } => Error::InFile {
                file: file.to_string(),
                column,
                error,
            },
            e => Error::InFile {
                file: file.to_string(),
                column: column.to_string(),
                error: Box::new(e),
            },
        }
    }

    /// Wraps the error with the column it was found in.
    pub fn in_column(self, column: &str) -> Self {
        match self {
            e @ (Error::InFile { .. } | Error::InColumn { .. }) => e,
            e => Error::InColumn {
                column: column.to_string(),
                error: Box::new(e),
            },
        }
    }

    /// The innermost error, past the file and column wrappers (to match on its kind).
    pub fn kind(&self) -> &Error {
        match self {
            Error::InFile { error, .. } | Error::InColumn { error, .. } => error.kind(),
            e => e,
        }
    }

    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            cause: source,
        }
    }
}

// Not `#[from]`: that would also make the wrapped error a `source`, and reporters that
// print the chain would repeat its message, which the variant's message already holds.
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Json(e)
    }
}

#[cfg(feature = "job")]
impl From<parquet::errors::ParquetError> for Error {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Error::Parquet(e)
    }
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
