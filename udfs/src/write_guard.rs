//! The one guard of SQL writes: no statement writes over, into or inside a table it reads.
//!
//! [`check_writes`] finds every write in a logical plan (`COPY ... TO`, `INSERT INTO`,
//! wherever they sit: under `EXPLAIN ANALYZE` too) and refuses it when its target is, in any
//! spelling ([`embquant::io::Location`]), one of the protected inputs or a registered
//! listing table's file or directory, holds one, or lies inside one; an `INSERT INTO` a
//! protected table (or a table stored where one is) is refused. Front doors (the CLI, the
//! cluster, Python) call it on every statement before executing it.

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{plan_datafusion_err, Result, TableReference};
use datafusion::datasource::listing::ListingTable;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::LogicalPlan;

/// What a session's statements may not write over: tables registered as inputs (by
/// location, directories guarding what lies below them, and by name).
#[derive(Debug, Default, Clone)]
pub struct Protected {
    /// Their locations.
    pub read: embquant::io::Inputs,
    /// Their names (`INSERT INTO` may not target them).
    pub names: Vec<String>,
}

impl Protected {
    /// Protects the table `name` registered from `location` (a path or URL, as given).
    pub fn add_table(&mut self, name: &str, location: &str) -> Result<()> {
        self.read
            .add_spelling(location)
            .map_err(|e| plan_datafusion_err!("table {name}: {e}"))?;
        self.names.push(name.to_string());
        Ok(())
    }
}

/// What a plan would write: the targets of its `COPY`s and the tables of its DML.
pub fn writes(plan: &LogicalPlan) -> Result<(Vec<String>, Vec<TableReference>)> {
    let (mut copies, mut dml) = (Vec::new(), Vec::new());
    plan.apply(|node| {
        match node {
            LogicalPlan::Copy(c) => copies.push(c.output_url.clone()),
            LogicalPlan::Dml(d) => dml.push(d.table_name.clone()),
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok((copies, dml))
}

/// Every listing table of the session, with the URLs it reads.
async fn session_tables(ctx: &SessionContext) -> Vec<(TableReference, Vec<String>)> {
    let mut out = Vec::new();
    for cat in ctx.catalog_names() {
        let Some(catalog) = ctx.catalog(&cat) else {
            continue;
        };
        for name in catalog.schema_names() {
            let Some(schema) = catalog.schema(&name) else {
                continue;
            };
            for table in schema.table_names() {
                let Ok(Some(provider)) = schema.table(&table).await else {
                    continue;
                };
                if let Some(listing) = provider.downcast_ref::<ListingTable>() {
                    let urls = listing
                        .table_paths()
                        .iter()
                        .map(|u| u.get_url().to_string())
                        .collect();
                    out.push((
                        TableReference::full(cat.as_str(), name.as_str(), table),
                        urls,
                    ));
                }
            }
        }
    }
    out
}

/// Refuses `plan` when it writes over, into or inside a table it may read: a `COPY` whose
/// target is (in any spelling) a protected input or a registered listing table's file or
/// directory, holds one or lies inside one; an `INSERT INTO` a protected table or a table
/// stored in one's location.
pub async fn check_writes(
    ctx: &SessionContext,
    plan: &LogicalPlan,
    protected: &Protected,
) -> Result<()> {
    let (copies, dml) = writes(plan)?;
    if copies.is_empty() && dml.is_empty() {
        return Ok(());
    }
    let tables = session_tables(ctx).await;
    let mut read = protected.read.clone();
    for (name, urls) in &tables {
        for u in urls {
            read.add_spelling(u)
                .map_err(|e| plan_datafusion_err!("table {name}: {e}"))?;
        }
    }
    for target in &copies {
        read.check_spelling(target, true)
            .map_err(|e| plan_datafusion_err!("COPY ... TO '{target}': {e}"))?;
    }
    let config = ctx.copied_config();
    let catalog = &config.options().catalog;
    let resolve = |t: &TableReference| {
        t.clone()
            .resolve(&catalog.default_catalog, &catalog.default_schema)
    };
    for t in &dml {
        let full = resolve(t);
        if protected
            .names
            .iter()
            .any(|n| resolve(&TableReference::from(n.as_str())) == full)
        {
            return Err(plan_datafusion_err!(
                "refusing to write into the table {t}: it is an input, and embquant never \
                 modifies its inputs (COPY the result elsewhere)"
            ));
        }
        for (name, urls) in &tables {
            if resolve(name) == full {
                for u in urls {
                    protected
                        .read
                        .check_spelling(u, true)
                        .map_err(|e| plan_datafusion_err!("writing into the table {t}: {e}"))?;
                }
            }
        }
    }
    Ok(())
}
