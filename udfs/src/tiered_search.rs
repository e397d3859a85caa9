//! `tiered_search('corpus', 'queries', k [, 'binary:8,int8:2,float'])`: tiered KNN as a
//! table function, backed by [`TieredSearchExec`] running the library's
//! [`Corpus::search`](embquant::search::Corpus::search).
//!
//! The corpus table holds code columns written by `embquant quantize` (or by the quantize
//! functions with `COPY ... TO`), found by their `embquant` field metadata, and, for the
//! `float` tier, the float column they were made from. The queries table holds a float
//! vector column of the same name (or its only vector column). Ids: the corpus' integer
//! `id` column (row numbers when absent) and the queries' `id` or `query_id` column.
//! Output: `(query_id Int64, rank UInt32, id Int64, score Float32, tier Utf8)`, `rank`
//! from 1, best first, exactly as `embquant search` writes it.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float16Type, Int8Type, Schema, SchemaRef};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{
    exec_err, plan_err, DataFusionError, Result, ScalarValue, TableReference,
};
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use embquant::codec::binary::{BinaryCodec, BinaryThreshold};
use embquant::metadata::{ColumnRecipe, Scheme, Truncation};
use embquant::search::results::{results_batch, results_schema};
use embquant::search::tiered::InMemoryFloats;
use embquant::search::{Corpus, Tier, TierSpec};
use embquant::{Calibration, Int4Codec, Int8Codec, MatryoshkaOptions, Vectors};
use futures::TryStreamExt;

use crate::args::ext;

const NAME: &str = "tiered_search";

/// The default tier chain.
pub const DEFAULT_TIERS: &str = "binary:8,int8:2,float";

/// The output schema (the library's search results).
pub fn output_schema() -> SchemaRef {
    results_schema()
}

/// The `tiered_search` table function.
#[derive(Debug, Default)]
pub struct TieredSearchFunc;

fn string_arg(e: &Expr, what: &str) -> Result<String> {
    match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
            _,
        ) => Ok(s.clone()),
        other => plan_err!("{NAME}: {what} must be a string literal, got {other}"),
    }
}

impl TableFunctionImpl for TieredSearchFunc {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if !(3..=4).contains(&exprs.len()) {
            return plan_err!(
                "{NAME}: expected ('corpus_table', 'queries_table', k [, 'tiers']), got {} arguments",
                exprs.len()
            );
        }
        let corpus = string_arg(&exprs[0], "argument 1 (corpus table)")?;
        let queries = string_arg(&exprs[1], "argument 2 (queries table)")?;
        let k = match &exprs[2] {
            Expr::Literal(v, _) => match v.cast_to(&DataType::Int64) {
                Ok(ScalarValue::Int64(Some(k))) if k >= 1 => k as usize,
                _ => return plan_err!("{NAME}: argument 3 (k) must be an integer >= 1, got {v}"),
            },
            other => {
                return plan_err!("{NAME}: argument 3 (k) must be an integer literal, got {other}")
            }
        };
        let tiers = match exprs.get(3) {
            Some(e) => string_arg(e, "argument 4 (tiers)")?,
            None => DEFAULT_TIERS.to_string(),
        };
        let chain = TierSpec::parse_chain(&tiers).map_err(|e| ext(NAME, e))?;
        Ok(Arc::new(TieredSearchTable {
            corpus,
            queries,
            k,
            chain,
            schema: output_schema(),
        }))
    }
}

/// The table a `tiered_search(...)` call stands for; resolved against the session's
/// catalog when scanned.
#[derive(Debug)]
pub struct TieredSearchTable {
    corpus: String,
    queries: String,
    k: usize,
    chain: Vec<TierSpec>,
    schema: SchemaRef,
}

async fn resolve(state: &dyn Session, name: &str) -> Result<Arc<dyn TableProvider>> {
    let opts = &state.config_options().catalog;
    let r = TableReference::from(name).resolve(&opts.default_catalog, &opts.default_schema);
    let schema = state
        .catalog_list()
        .catalog(&r.catalog)
        .and_then(|c| c.schema(&r.schema));
    match schema {
        Some(s) => match s.table(&r.table).await? {
            Some(t) => Ok(t),
            None => plan_err!("{NAME}: no table {name:?}"),
        },
        None => plan_err!("{NAME}: no schema for table {name:?}"),
    }
}

fn is_float_vector(dt: &DataType) -> bool {
    match dt {
        DataType::FixedSizeList(f, _) | DataType::List(f) | DataType::LargeList(f) => {
            matches!(
                f.data_type(),
                DataType::Float16 | DataType::Float32 | DataType::Float64
            )
        }
        _ => false,
    }
}

fn is_integer(dt: &DataType) -> bool {
    dt.is_integer()
}

fn scheme_of(tier: Tier) -> Option<Scheme> {
    match tier {
        Tier::Binary => Some(Scheme::Binary),
        Tier::Int8 => Some(Scheme::Int8),
        Tier::Int4 => Some(Scheme::Int4),
        Tier::F16 => Some(Scheme::F16),
        Tier::Rabitq => Some(Scheme::Rabitq),
        Tier::Float => None,
    }
}

/// Which columns of the two tables the search reads, decided from their schemas.
#[derive(Debug, Clone)]
struct Layout {
    /// Code columns (index in the corpus schema, recipe), one per coded tier, chain order.
    codes: Vec<(usize, ColumnRecipe)>,
    calibration: Option<Calibration>,
    truncation: Option<Truncation>,
    /// The float column of the corpus (float tier).
    float: Option<usize>,
    /// The corpus id column.
    id: Option<usize>,
    /// The query vector column and id column.
    query: usize,
    query_id: Option<usize>,
}

fn layout(corpus: &Schema, queries: &Schema, chain: &[TierSpec]) -> Result<Layout> {
    let mut found: Vec<(usize, ColumnRecipe, Option<Calibration>)> = Vec::new();
    for (i, f) in corpus.fields().iter().enumerate() {
        if let Some((r, c)) = ColumnRecipe::from_field(f).map_err(|e| ext(NAME, e))? {
            found.push((i, r, c));
        }
    }
    let schemes: Vec<Scheme> = chain.iter().filter_map(|s| scheme_of(s.tier)).collect();
    let wants_float = chain.iter().any(|s| s.tier == Tier::Float);
    let mut sources: Vec<String> = found
        .iter()
        .map(|(_, r, _)| r.source_column.clone())
        .collect();
    sources.dedup();
    let source = sources
        .iter()
        .find(|src| {
            schemes.iter().all(|s| {
                found
                    .iter()
                    .any(|(_, r, _)| &r.source_column == *src && r.scheme == *s)
            })
        })
        .cloned();
    let source = match (source, schemes.is_empty()) {
        (Some(s), _) => Some(s),
        (None, true) => None,
        (None, false) => {
            return plan_err!(
                "{NAME}: the corpus has no code columns for the tiers {:?} (columns with embquant metadata: {}); \
                 quantize with embquant quantize or the quantize functions, and keep Parquet metadata (datafusion.execution.parquet.skip_metadata = false)",
                schemes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                if found.is_empty() { "none".to_string() } else {
                    found.iter().map(|(i, r, _)| format!("{} ({})", corpus.field(*i).name(), r.scheme)).collect::<Vec<_>>().join(", ")
                }
            )
        }
    };
    let mut codes = Vec::new();
    let mut calibration: Option<Calibration> = None;
    for s in &schemes {
        let (i, r, c) = found
            .iter()
            .find(|(_, r, _)| Some(&r.source_column) == source.as_ref() && r.scheme == *s)
            .cloned()
            .expect("checked above");
        if let Some(c) = c {
            if let Some(prev) = &calibration {
                if prev.fingerprint() != c.fingerprint() {
                    return plan_err!(
                        "{NAME}: the code columns carry different calibrations: codes are only comparable under one calibration"
                    );
                }
            }
            calibration = Some(c);
        }
        codes.push((i, r));
    }
    let truncation = codes.first().and_then(|(_, r)| r.truncation);
    let vector_named = |schema: &Schema, name: Option<&String>| -> Option<usize> {
        name.and_then(|n| schema.index_of(n).ok())
            .filter(|&i| is_float_vector(schema.field(i).data_type()))
            .or_else(|| {
                let v: Vec<usize> = (0..schema.fields().len())
                    .filter(|&i| {
                        is_float_vector(schema.field(i).data_type())
                            && schema
                                .field(i)
                                .metadata()
                                .get(embquant::METADATA_KEY)
                                .is_none()
                    })
                    .collect();
                (v.len() == 1).then(|| v[0])
            })
    };
    let float = if wants_float {
        match vector_named(corpus, source.as_ref()) {
            Some(i) => Some(i),
            None => {
                return plan_err!(
                    "{NAME}: the float tier needs the corpus' float vector column{}",
                    source
                        .as_ref()
                        .map(|s| format!(" {s:?}"))
                        .unwrap_or_default()
                )
            }
        }
    } else {
        None
    };
    let qname = source
        .clone()
        .or_else(|| float.map(|i| corpus.field(i).name().clone()));
    let Some(query) = vector_named(queries, qname.as_ref()) else {
        return plan_err!(
            "{NAME}: the queries table needs a float vector column{} (or exactly one vector column)",
            qname.map(|s| format!(" named {s:?}")).unwrap_or_default()
        );
    };
    let int_col = |schema: &Schema, names: &[&str]| {
        names.iter().find_map(|n| {
            schema
                .index_of(n)
                .ok()
                .filter(|&i| is_integer(schema.field(i).data_type()))
        })
    };
    Ok(Layout {
        codes,
        calibration,
        truncation,
        float,
        id: int_col(corpus, &["id"]),
        query,
        query_id: int_col(queries, &["query_id", "id"]),
    })
}

#[async_trait]
impl TableProvider for TieredSearchTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let corpus = resolve(state, &self.corpus).await?;
        let queries = resolve(state, &self.queries).await?;
        let (cs, qs) = (corpus.schema(), queries.schema());
        let layout = layout(&cs, &qs, &self.chain)?;
        // Read only the columns the search needs; remember where they land.
        let mut cproj: Vec<usize> = layout.codes.iter().map(|(i, _)| *i).collect();
        cproj.extend(layout.float);
        cproj.extend(layout.id);
        cproj.sort_unstable();
        cproj.dedup();
        let mut qproj = vec![layout.query];
        qproj.extend(layout.query_id);
        qproj.sort_unstable();
        qproj.dedup();
        let corpus_plan = corpus.scan(state, Some(&cproj), &[], None).await?;
        let queries_plan = queries.scan(state, Some(&qproj), &[], None).await?;
        let columns = Columns {
            codes: layout
                .codes
                .iter()
                .map(|(i, r)| (cs.field(*i).name().clone(), r.clone()))
                .collect(),
            float: layout.float.map(|i| cs.field(i).name().clone()),
            id: layout.id.map(|i| cs.field(i).name().clone()),
            query: qs.field(layout.query).name().clone(),
            query_id: layout.query_id.map(|i| qs.field(i).name().clone()),
        };
        Ok(Arc::new(TieredSearchExec::new(
            SearchSpec {
                corpus_table: self.corpus.clone(),
                queries_table: self.queries.clone(),
                k: self.k,
                chain: self.chain.clone(),
                columns,
                calibration: layout.calibration,
                truncation: layout.truncation,
            },
            corpus_plan,
            queries_plan,
            projection.cloned(),
        )?))
    }
}

/// Column names in the scanned inputs.
#[derive(Debug, Clone)]
struct Columns {
    codes: Vec<(String, ColumnRecipe)>,
    float: Option<String>,
    id: Option<String>,
    query: String,
    query_id: Option<String>,
}

/// What to search, resolved at planning time.
#[derive(Debug, Clone)]
pub struct SearchSpec {
    corpus_table: String,
    queries_table: String,
    k: usize,
    chain: Vec<TierSpec>,
    columns: Columns,
    calibration: Option<Calibration>,
    truncation: Option<Truncation>,
}

impl SearchSpec {
    fn chain_string(&self) -> String {
        self.chain
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if i + 1 == self.chain.len() {
                    s.tier.to_string()
                } else {
                    format!(
                        "{}:{} (keeps {})",
                        s.tier,
                        s.factor,
                        self.k.saturating_mul(s.factor)
                    )
                }
            })
            .collect::<Vec<_>>()
            .join(" -> ")
    }
}

/// Runs the library's tiered search over two inputs: reads every partition of the corpus
/// and query plans (in partition order, so rows keep their table order), then searches on
/// a blocking thread (the search itself is parallel with rayon). One output partition.
#[derive(Debug)]
pub struct TieredSearchExec {
    spec: Arc<SearchSpec>,
    corpus: Arc<dyn ExecutionPlan>,
    queries: Arc<dyn ExecutionPlan>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    cache: Arc<PlanProperties>,
}

impl TieredSearchExec {
    /// A plan over `corpus` and `queries` (plans of the two tables' needed columns).
    pub fn new(
        spec: SearchSpec,
        corpus: Arc<dyn ExecutionPlan>,
        queries: Arc<dyn ExecutionPlan>,
        projection: Option<Vec<usize>>,
    ) -> Result<Self> {
        let full = output_schema();
        let schema = match &projection {
            Some(p) => Arc::new(full.project(p)?),
            None => full,
        };
        let cache = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Ok(Self {
            spec: Arc::new(spec),
            corpus,
            queries,
            projection,
            schema,
            cache,
        })
    }

    /// The plan's name.
    pub fn static_name() -> &'static str {
        "TieredSearchExec"
    }
}

impl DisplayAs for TieredSearchExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let s = &self.spec;
        let codes: Vec<String> = s
            .columns
            .codes
            .iter()
            .map(|(n, r)| format!("{}={n}", r.scheme))
            .chain(s.columns.float.iter().map(|n| format!("float={n}")))
            .collect();
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "{}: k={}, tiers=[{}], corpus={} [{}], queries={} [{}]",
                Self::static_name(),
                s.k,
                s.chain_string(),
                s.corpus_table,
                codes.join(", "),
                s.queries_table,
                s.columns.query
            ),
            DisplayFormatType::TreeRender => {
                writeln!(f, "k={}", s.k)?;
                write!(f, "tiers={}", s.chain_string())
            }
        }
    }
}

impl ExecutionPlan for TieredSearchExec {
    fn name(&self) -> &str {
        Self::static_name()
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.cache
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        // The inputs are read whole inside `execute`, in partition order; they are not
        // children so the optimizer does not repartition (reorder) them.
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            exec_err!("{} takes no children", Self::static_name())
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return exec_err!("{}: no partition {partition}", Self::static_name());
        }
        let (spec, corpus, queries) = (
            Arc::clone(&self.spec),
            Arc::clone(&self.corpus),
            Arc::clone(&self.queries),
        );
        let (projection, schema) = (self.projection.clone(), Arc::clone(&self.schema));
        let fut = async move {
            let cb = collect_in_order(&corpus, &context).await?;
            let qb = collect_in_order(&queries, &context).await?;
            let batch = tokio::task::spawn_blocking(move || search(&spec, &cb, &qb))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))??;
            match &projection {
                Some(p) => Ok(batch.project(p)?),
                None => Ok(batch),
            }
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::once(fut),
        )))
    }
}

async fn collect_in_order(
    plan: &Arc<dyn ExecutionPlan>,
    context: &Arc<TaskContext>,
) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for p in 0..plan.properties().partitioning.partition_count() {
        let s = plan.execute(p, Arc::clone(context))?;
        out.extend(s.try_collect::<Vec<_>>().await?);
    }
    Ok(out)
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    match b.column_by_name(name) {
        Some(c) => Ok(c),
        None => exec_err!("{NAME}: column {name:?} missing from the scan"),
    }
}

/// The id column's values (row numbers without one), by the library's one rule for ids
/// ([`embquant::ids`]): integers fitting in Int64, no NULLs.
fn ids(batches: &[RecordBatch], name: Option<&str>) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for b in batches {
        match name {
            Some(n) => {
                let first = out.len() as u64;
                let v = embquant::ids::id_values(column(b, n)?.as_ref(), first)
                    .map_err(|e| ext(NAME, e))?;
                out.extend(v);
            }
            None => {
                let s = out.len() as i64;
                out.extend(s..s + b.num_rows() as i64);
            }
        }
    }
    Ok(out)
}

fn truncated(col: &ArrayRef, t: Option<Truncation>) -> Result<ArrayRef> {
    match t {
        Some(t) => Ok(Arc::new(
            embquant::truncate(
                col.as_ref(),
                &MatryoshkaOptions {
                    dims: t.dims,
                    normalize: t.normalized,
                },
            )
            .map_err(|e| ext(NAME, e))?,
        )),
        None => Ok(Arc::clone(col)),
    }
}

fn fixed_bytes(col: &ArrayRef, what: &str, out: &mut Vec<u8>) -> Result<()> {
    match col.data_type() {
        DataType::FixedSizeBinary(_) => {
            let a = col.as_fixed_size_binary();
            for i in 0..a.len() {
                out.extend_from_slice(a.value(i));
            }
            Ok(())
        }
        other => exec_err!("{NAME}: {what} codes must be FixedSizeBinary, got {other}"),
    }
}

/// Builds the in-memory corpus from the scanned batches and runs the search.
fn search(
    spec: &SearchSpec,
    corpus: &[RecordBatch],
    queries: &[RecordBatch],
) -> Result<RecordBatch> {
    let cols = &spec.columns;
    let rows: usize = corpus.iter().map(|b| b.num_rows()).sum();
    let mut valid = vec![true; rows];
    let mark = |c: &ArrayRef, start: usize, valid: &mut [bool]| {
        if c.null_count() > 0 {
            (0..c.len()).for_each(|r| valid[start + r] &= c.is_valid(r));
        }
    };
    let need_cal = || {
        ext(
            NAME,
            embquant::Error::MissingCalibrationData(
                "the corpus calibration (field metadata embquant.calibration)",
            ),
        )
    };
    let dims = cols.codes.first().map(|(_, r)| r.dims);
    let mut c = Corpus::new(rows, dims.unwrap_or(0));
    for (name, r) in &cols.codes {
        let mut start = 0;
        match r.scheme {
            Scheme::Binary => {
                let mut bytes = Vec::new();
                for b in corpus {
                    let col = column(b, name)?;
                    mark(col, start, &mut valid);
                    start += col.len();
                    fixed_bytes(col, "binary", &mut bytes)?;
                }
                let codec = match (r.threshold.as_deref(), &spec.calibration) {
                    (Some("mean"), Some(cal)) => {
                        BinaryCodec::with_calibration(cal, BinaryThreshold::Mean)
                    }
                    (Some("median"), Some(cal)) => {
                        BinaryCodec::with_calibration(cal, BinaryThreshold::Median)
                    }
                    (Some("zero") | None, _) => Ok(BinaryCodec::new(r.dims)),
                    _ => return Err(need_cal()),
                }
                .map_err(|e| ext(NAME, e))?;
                c.binary = Some((bytes, codec));
            }
            Scheme::Int8 => {
                let mut codes: Vec<i8> = Vec::with_capacity(rows * r.dims);
                for b in corpus {
                    let col = column(b, name)?;
                    mark(col, start, &mut valid);
                    start += col.len();
                    match col.data_type() {
                        DataType::FixedSizeBinary(_) => {
                            let a = col.as_fixed_size_binary();
                            for i in 0..a.len() {
                                codes.extend(a.value(i).iter().map(|&x| x as i8));
                            }
                        }
                        DataType::FixedSizeList(f, _) if f.data_type() == &DataType::Int8 => {
                            let a = col.as_fixed_size_list();
                            let v = a.values().as_primitive::<Int8Type>().values();
                            for i in 0..a.len() {
                                let s = a.value_offset(i) as usize;
                                codes.extend_from_slice(&v[s..s + r.dims]);
                            }
                        }
                        other => return exec_err!("{NAME}: unsupported int8 code type {other}"),
                    }
                }
                let cal = spec.calibration.as_ref().ok_or_else(need_cal)?;
                c.int8 = Some((codes, Int8Codec::new(cal)));
            }
            Scheme::Int4 => {
                let mut bytes = Vec::new();
                for b in corpus {
                    let col = column(b, name)?;
                    mark(col, start, &mut valid);
                    start += col.len();
                    fixed_bytes(col, "int4", &mut bytes)?;
                }
                let cal = spec.calibration.as_ref().ok_or_else(need_cal)?;
                c.int4 = Some((bytes, Int4Codec::new(cal)));
            }
            Scheme::F16 | Scheme::Bf16 => {
                let mut v = Vec::with_capacity(rows * r.dims);
                for b in corpus {
                    let col = column(b, name)?;
                    mark(col, start, &mut valid);
                    start += col.len();
                    let a = col.as_fixed_size_list();
                    let vals = a.values().as_primitive::<Float16Type>().values();
                    for i in 0..a.len() {
                        let s = a.value_offset(i) as usize;
                        v.extend_from_slice(&vals[s..s + r.dims]);
                    }
                }
                c.f16 = Some(v);
            }
            Scheme::Rabitq => {
                let mut bytes = Vec::new();
                for b in corpus {
                    let col = column(b, name)?;
                    mark(col, start, &mut valid);
                    start += col.len();
                    fixed_bytes(col, "rabitq", &mut bytes)?;
                }
                let cal = spec.calibration.as_ref().ok_or_else(need_cal)?;
                let codec =
                    embquant::RabitqCodec::new(cal, r.rabitq_rotation().map_err(|e| ext(NAME, e))?);
                c.rabitq = Some((bytes, codec));
            }
        }
    }
    if let Some(name) = &cols.float {
        let mut values = Vec::new();
        let mut dim = 0;
        let mut start = 0;
        for b in corpus {
            let col = truncated(column(b, name)?, spec.truncation)?;
            mark(&col, start, &mut valid);
            start += col.len();
            let v = Vectors::try_new(col.as_ref()).map_err(|e| ext(NAME, e))?;
            dim = v.dim();
            values.extend_from_slice(v.values());
        }
        if dims.is_some_and(|d| d != dim) && rows > 0 {
            return exec_err!(
                "{NAME}: the float column has {dim} dimensions, the codes {}",
                c.dim
            );
        }
        if c.dim == 0 {
            c.dim = dim;
        }
        c.floats = Some(Box::new(InMemoryFloats { values, dim }));
    }
    if valid.iter().any(|v| !v) {
        c.valid = Some(valid);
    }
    c.prepare();
    // Queries.
    let mut qvals: Vec<f32> = Vec::new();
    for b in queries {
        let col = crate::args::vector_arg(
            NAME,
            "queries",
            &datafusion::logical_expr::ColumnarValue::Array(Arc::clone(column(b, &cols.query)?)),
        )?;
        let Some(col) = col else { continue };
        let col = truncated(&col.array, spec.truncation)?;
        let v = Vectors::try_new(col.as_ref()).map_err(|e| ext(NAME, e))?;
        if v.null_count() > 0 {
            return exec_err!("{NAME}: NULL query vectors are not supported");
        }
        if v.dim() != c.dim {
            return exec_err!(
                "{NAME}: the queries have {} dimensions, the corpus {}",
                v.dim(),
                c.dim
            );
        }
        qvals.extend_from_slice(v.values());
    }
    let qids = ids(queries, cols.query_id.as_deref())?;
    let cids = ids(corpus, cols.id.as_deref())?;
    let results = if qvals.is_empty() || rows == 0 {
        vec![Vec::new(); qids.len()]
    } else {
        c.search(&qvals, spec.k, &spec.chain)
            .map_err(|e| ext(NAME, e))?
    };
    tracing::debug!(queries = qids.len(), rows, "tiered search done");
    results_batch(&results, &qids, &cids).map_err(|e| ext(NAME, e))
}
