//! [`TieredSearchExec`]: the execution plan that reads both inputs and runs the search.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{exec_err, DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use embquant::search::CorpusBuilder;
use futures::TryStreamExt;

use crate::args::ext;

use super::build::search;
use super::spec::SearchSpec;
use super::{output_schema, NAME};

/// Runs the library's tiered search over two inputs: reads every partition of the corpus
/// and query plans (in partition order, so rows keep their table order), then searches on
/// a blocking thread (the search itself is parallel with rayon). One output partition.
#[derive(Debug)]
pub struct TieredSearchExec {
    pub(super) spec: Arc<SearchSpec>,
    pub(super) corpus: Arc<dyn ExecutionPlan>,
    pub(super) queries: Arc<dyn ExecutionPlan>,
    pub(super) projection: Option<Vec<usize>>,
    pub(super) schema: SchemaRef,
    pub(super) cache: Arc<PlanProperties>,
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
            .layout
            .codes
            .iter()
            .map(|(i, r)| format!("{}={}", r.scheme, s.corpus_schema.field(*i).name()))
            .chain(
                s.layout
                    .float
                    .iter()
                    .map(|i| format!("float={}", s.corpus_schema.field(*i).name())),
            )
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
                s.query
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
            // The corpus is fed to the builder batch by batch as it streams in.
            let mut builder = CorpusBuilder::new(
                spec.layout.clone(),
                &spec.corpus_schema,
                spec.id.as_deref(),
                true,
            )
            .map_err(|e| ext(NAME, e))?;
            for p in 0..corpus.properties().partitioning.partition_count() {
                let mut s = corpus.execute(p, Arc::clone(&context))?;
                while let Some(b) = s.try_next().await? {
                    builder
                        .push(&b, builder.rows() as u64)
                        .map_err(|e| ext(NAME, e))?;
                }
            }
            let qb = collect_in_order(&queries, &context).await?;
            let batch = tokio::task::spawn_blocking(move || search(&spec, builder, &qb))
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

pub(super) async fn collect_in_order(
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
