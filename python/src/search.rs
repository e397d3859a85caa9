//! `Corpus`: codes loaded once (from files written by the job, or encoded from vectors in
//! memory) and searched many times with a tier chain, as `embquant search` does.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use embquant::job;
use embquant::search::{
    load_corpus, CodeLayout, CorpusBuilder, LoadedCorpus, QueryReader, TierSpec,
};
use pyo3::prelude::*;
use pyo3_arrow::PyTable;

use crate::arrays;
use crate::calibration::PyCalibration;
use crate::codes::{self, Recipe};
use crate::errors::{value_error, IntoPy};
use embquant::Scheme;

/// Codes of a corpus in memory, ready for tiered search.
#[pyclass(name = "Corpus", module = "embquant._embquant", frozen)]
pub(crate) struct PyCorpus {
    loaded: Arc<LoadedCorpus>,
    /// The chain it was loaded for (the default of `search`).
    chain: String,
    /// The query column name (the source column of the codes).
    column: String,
}

fn ids_array(obj: &Bound<'_, PyAny>) -> PyResult<ArrayRef> {
    let col = arrays::column(obj, None, |dt| dt.is_integer())?;
    // The library's one id rule (integers that fit in Int64, no NULLs).
    let ids = embquant::ids::id_values(col.array.as_ref(), 0).py()?;
    Ok(Arc::new(Int64Array::from(ids)))
}

#[pymethods]
impl PyCorpus {
    /// Loads the code columns `tiers` reads from files written by `embquant quantize` (or
    /// `quantize_parquet`) of `column`; the float tier reads `column` from them on demand.
    #[staticmethod]
    #[pyo3(signature = (paths, column="embedding", id_column=None, tiers="binary:8,int8:2,float"))]
    fn load(
        py: Python<'_>,
        paths: Vec<String>,
        column: &str,
        id_column: Option<&str>,
        tiers: &str,
    ) -> PyResult<Self> {
        let chain = TierSpec::parse_chain(tiers).py()?;
        let loaded = py
            .detach(|| {
                let files = job::discover(&paths)?;
                load_corpus(&files, column, id_column, &chain)
            })
            .py()?;
        Ok(Self {
            loaded: Arc::new(loaded),
            chain: tiers.to_string(),
            column: column.to_string(),
        })
    }

    /// Encodes `vectors` in memory by `schemes` (with `calibration`, or min/max of the vectors
    /// themselves), keeping the floats for a `float` tier unless `keep_float` is False.
    #[staticmethod]
    #[pyo3(signature = (vectors, calibration=None, schemes="int8,binary", ids=None, column=None, keep_float=true))]
    fn from_vectors(
        py: Python<'_>,
        vectors: &Bound<'_, PyAny>,
        calibration: Option<PyRef<'_, PyCalibration>>,
        schemes: &str,
        ids: Option<&Bound<'_, PyAny>>,
        column: Option<&str>,
        keep_float: bool,
    ) -> PyResult<Self> {
        let recipe = Recipe::parse(schemes, None, "zero", None, "binary", "hadamard")?;
        let col = arrays::vectors(vectors, column)?;
        let ids = ids.map(ids_array).transpose()?;
        if let Some(ids) = &ids {
            if ids.len() != col.array.len() {
                return Err(value_error(format!(
                    "{} ids for {} vectors",
                    ids.len(),
                    col.array.len()
                )));
            }
        }
        let cal = calibration.map(|c| Arc::clone(&c.cal));
        // The default chain of `search`: the codes coarse to fine (the first tier keeps
        // 8 k candidates, each later one 2 k, as `embquant search`'s default), then float.
        let cost = |s: &Scheme| match s {
            Scheme::Binary => 0,
            Scheme::Rabitq => 1,
            Scheme::Int4 => 2,
            Scheme::Int8 => 3,
            _ => 4,
        };
        let mut schemes = recipe.schemes().to_vec();
        schemes.sort_by_key(cost);
        let mut tiers: Vec<String> = schemes
            .iter()
            .map(|s| match s {
                Scheme::Rabitq if recipe.rabitq_bits() > 1 => {
                    format!("rabitq{}", recipe.rabitq_bits())
                }
                s => s.to_string(),
            })
            .collect();
        if keep_float {
            tiers.push("float".into());
        }
        let n = tiers.len();
        let chain_s = tiers
            .iter()
            .enumerate()
            .map(|(i, t)| match (i, i + 1 < n) {
                (0, true) => format!("{t}:8"),
                (_, true) => format!("{t}:2"),
                _ => t.clone(),
            })
            .collect::<Vec<_>>()
            .join(",");
        let chain = TierSpec::parse_chain(&chain_s).py()?;
        let (loaded, name) = py
            .detach(|| -> embquant::Result<_> {
                let (batch, name) = codes::batch_of(&col)?;
                let (mut arrays, mut fields) = codes::encode(&col, cal, &recipe)?;
                arrays.insert(0, Arc::clone(batch.column(0)));
                fields.insert(0, batch.schema().fields()[0].clone());
                let id_name = "__embquant_id";
                if let Some(ids) = ids {
                    arrays.push(ids);
                    fields.push(Arc::new(Field::new(id_name, DataType::Int64, true)));
                }
                let schema = Schema::new(fields);
                let batch = RecordBatch::try_new(Arc::new(schema.clone()), arrays)?;
                let layout = CodeLayout::from_schema(&schema, Some(name.as_str()), &chain)?;
                let id_col = (batch.num_columns() > 1 + recipe.columns()).then_some(id_name);
                let mut b = CorpusBuilder::new(layout, &schema, id_col, keep_float)?;
                b.push(&batch, 0)?;
                Ok((b.finish()?, name))
            })
            .py()?;
        Ok(Self {
            loaded: Arc::new(loaded),
            chain: chain_s,
            column: name,
        })
    }

    #[getter]
    fn rows(&self) -> usize {
        self.loaded.corpus.rows()
    }

    #[getter]
    fn dim(&self) -> usize {
        self.loaded.corpus.dim()
    }

    /// The tier chain the corpus was loaded for.
    #[getter]
    fn tiers(&self) -> String {
        self.chain.clone()
    }

    /// Top-`k` of every query by `tiers` (the loaded chain by default): a table of
    /// (query_id, rank, id, score, tier), as `embquant search` writes.
    #[pyo3(signature = (queries, k=10, tiers=None, query_ids=None, column=None))]
    fn search(
        &self,
        py: Python<'_>,
        queries: &Bound<'_, PyAny>,
        k: usize,
        tiers: Option<&str>,
        query_ids: Option<&Bound<'_, PyAny>>,
        column: Option<&str>,
    ) -> PyResult<PyTable> {
        if k == 0 {
            return Err(value_error("k must be at least 1"));
        }
        let chain = TierSpec::parse_chain(tiers.unwrap_or(&self.chain)).py()?;
        let col = arrays::vectors(queries, column.or(Some(self.column.as_str())))?;
        let qids = query_ids.map(ids_array).transpose()?;
        let loaded = Arc::clone(&self.loaded);
        let name = self.column.clone();
        let batch = py
            .detach(move || -> embquant::Result<RecordBatch> {
                let mut reader =
                    QueryReader::new(&name, None, loaded.truncation, loaded.corpus.dim());
                reader.push(col.array.as_ref(), qids.as_deref())?;
                let qs = reader.finish();
                let results = loaded.corpus.search(&qs.values, k, &chain)?;
                embquant::search::results::results_batch(&results, &qs.ids, &loaded.ids)
            })
            .py()?;
        let schema = batch.schema();
        PyTable::try_new(vec![batch], schema)
    }

    fn __repr__(&self) -> String {
        format!(
            "Corpus(rows={}, dim={}, tiers={:?})",
            self.rows(),
            self.dim(),
            self.chain
        )
    }
}
