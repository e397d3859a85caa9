//! Object stores in the SQL session: any bucket a query names (a table, `COPY ... TO
//! 's3://...'`, `CREATE EXTERNAL TABLE ... LOCATION 'gs://...'`) is served by embquant's
//! store for it, made from the environment on first use, the same store every other command
//! uses. Stores registered explicitly take precedence.

use std::sync::Arc;

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::object_store::ObjectStore;
use url::Url;

/// DataFusion's registry, falling back to [`embquant::io::object::store_for`] for the
/// object-store schemes embquant knows (credentials and endpoints from the environment, as
/// every embquant command takes them).
#[derive(Debug, Default)]
pub struct EnvStores {
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

/// A runtime whose object-store registry is [`EnvStores`]: every bucket a query names is
/// reachable with the environment's credentials.
pub fn runtime() -> Result<Arc<datafusion::execution::runtime_env::RuntimeEnv>> {
    datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(EnvStores::default()))
        .build_arc()
}
