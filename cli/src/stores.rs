//! Object stores in the SQL session: any bucket a query names (a table, `COPY ... TO
//! 's3://...'`, `CREATE EXTERNAL TABLE ... LOCATION 'gs://...'`) is served by embquant's
//! store for it, made from the environment on first use, the same store every other command
//! uses. Stores registered explicitly take precedence.

use std::sync::Arc;

use embquant_udfs::datafusion::common::{DataFusionError, Result};
use embquant_udfs::datafusion::execution::object_store::{
    DefaultObjectStoreRegistry, ObjectStoreRegistry,
};
use embquant_udfs::datafusion::object_store::ObjectStore;
use url::Url;

/// DataFusion's registry, falling back to [`embquant::io::object::store_for`] for the
/// object-store schemes embquant knows.
#[derive(Debug, Default)]
pub(crate) struct EnvStores {
    registered: DefaultObjectStoreRegistry,
}

impl ObjectStoreRegistry for EnvStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.registered.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.registered.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        if let Ok(s) = self.registered.get_store(url) {
            return Ok(s);
        }
        if !matches!(
            url.scheme(),
            "s3" | "s3a" | "gs" | "az" | "azure" | "abfs" | "abfss" | "adl"
        ) {
            return self.registered.get_store(url);
        }
        let store = embquant::io::object::store_for(url.as_str())
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .inner()
            .clone();
        self.registered.register_store(url, store.clone());
        Ok(store)
    }
}
