//! Starting the cluster's processes: a scheduler and executors that know every embquant
//! function, reach every object store embquant knows and keep Parquet field metadata.
//! Tasks are pulled by the executors (Ballista's pull-staged policy), so an executor needs
//! one port (its Arrow Flight server, for shuffle reads) and the scheduler one.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::{ConfigProducer, RuntimeProducer};
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use datafusion::prelude::SessionConfig;

use crate::session;

/// How to run a scheduler.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// The address to listen on (executors and clients connect to it).
    pub bind: SocketAddr,
    /// The host name executors and clients reach it by (default: the bind address).
    pub external_host: Option<String>,
    /// An executor silent for this long is lost: its tasks run elsewhere.
    pub executor_timeout_seconds: u64,
}

impl SchedulerOptions {
    /// Defaults for `bind`.
    pub fn new(bind: SocketAddr) -> Self {
        SchedulerOptions {
            bind,
            external_host: None,
            executor_timeout_seconds: 180,
        }
    }
}

fn config_producer() -> ConfigProducer {
    Arc::new(session::config)
}

/// Runs a scheduler until the process ends.
pub async fn run_scheduler(o: &SchedulerOptions) -> Result<()> {
    let config = SchedulerConfig {
        bind_host: o.bind.ip().to_string(),
        bind_port: o.bind.port(),
        external_host: o
            .external_host
            .clone()
            .unwrap_or_else(|| o.bind.ip().to_string()),
        scheduling_policy: TaskSchedulingPolicy::PullStaged,
        executor_timeout_seconds: o.executor_timeout_seconds,
        no_executors_grace_period_seconds: o.executor_timeout_seconds,
        expire_dead_executor_interval_seconds: o.executor_timeout_seconds.clamp(1, 15),
        ..Default::default()
    }
    .with_override_config_producer(config_producer())
    .with_override_session_builder(Arc::new(|c: SessionConfig| session::state(c)));
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .context("creating the scheduler's cluster state")?;
    tracing::info!(bind = %o.bind, "embquant scheduler starting");
    ballista_scheduler::scheduler_process::start_server(cluster, o.bind, Arc::new(config))
        .await
        .with_context(|| format!("the scheduler on {}", o.bind))
}

/// How to run an executor.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler, `HOST:PORT`.
    pub scheduler: String,
    /// The address of this executor's Arrow Flight server.
    pub bind: SocketAddr,
    /// The host name other processes reach it by (default: the bind address).
    pub external_host: Option<String>,
    /// Tasks run at once.
    pub vcores: usize,
    /// Where shuffle files go (default: a temporary directory).
    pub work_dir: Option<String>,
    /// Seconds between heartbeats to the scheduler.
    pub heartbeat_seconds: u64,
}

impl ExecutorOptions {
    /// Defaults: every core, heartbeats every 60 s.
    pub fn new(scheduler: impl Into<String>, bind: SocketAddr) -> Self {
        ExecutorOptions {
            scheduler: scheduler.into(),
            bind,
            external_host: None,
            vcores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            work_dir: None,
            heartbeat_seconds: 60,
        }
    }
}

/// Runs an executor until the process ends (or the scheduler stops it).
pub async fn run_executor(o: &ExecutorOptions) -> Result<()> {
    let (host, port) = o
        .scheduler
        .rsplit_once(':')
        .with_context(|| format!("--scheduler {:?}: expected HOST:PORT", o.scheduler))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("--scheduler {:?}: bad port", o.scheduler))?;
    let registry = Arc::new(session::function_registry()?);
    let runtime: RuntimeProducer = Arc::new(|_| session::runtime());
    let config = ExecutorProcessConfig {
        bind_host: o.bind.ip().to_string(),
        port: o.bind.port(),
        external_host: Some(
            o.external_host
                .clone()
                .unwrap_or_else(|| o.bind.ip().to_string()),
        ),
        scheduler_host: host.to_string(),
        scheduler_port: port,
        scheduler_connect_timeout_seconds: 30,
        vcores: o.vcores.max(1),
        task_scheduling_policy: TaskSchedulingPolicy::PullStaged,
        work_dir: o.work_dir.clone(),
        executor_heartbeat_interval_seconds: o.heartbeat_seconds.max(1),
        override_function_registry: Some(registry),
        override_runtime_producer: Some(runtime),
        override_config_producer: Some(config_producer()),
        ..Default::default()
    };
    tracing::info!(bind = %o.bind, scheduler = %o.scheduler, "embquant executor starting");
    start_executor_process(Arc::new(config))
        .await
        .with_context(|| format!("the executor on {}", o.bind))
}

/// A scheduler and executors in this process, for tests and demos: each executor is
/// Ballista's standalone one with embquant's functions, stores and configuration.
#[derive(Debug)]
pub struct LocalCluster {
    /// The scheduler's address.
    pub scheduler: SocketAddr,
}

impl LocalCluster {
    /// Starts a scheduler and `executors` executors of `vcores` task slots each.
    pub async fn start(executors: usize, vcores: usize) -> Result<Self> {
        let state = session::state(session::config())?;
        let scheduler = ballista_scheduler::standalone::new_standalone_scheduler_from_state(&state)
            .await
            .context("starting the in-process scheduler")?;
        let url = format!("http://{scheduler}");
        for _ in 0..executors {
            let client = connect_scheduler(&url).await?;
            let runtime: RuntimeProducer = Arc::new(|_| session::runtime());
            ballista_executor::new_standalone_executor_from_builder(
                client,
                vcores.max(1),
                config_producer(),
                runtime,
                Default::default(),
                session::function_registry()?,
            )
            .await
            .context("starting an in-process executor")?;
        }
        Ok(LocalCluster { scheduler })
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("df://{}", self.scheduler)
    }
}

async fn connect_scheduler(url: &str) -> Result<SchedulerGrpcClient<tonic::transport::Channel>> {
    let mut last = None;
    for _ in 0..100 {
        match SchedulerGrpcClient::connect(url.to_string()).await {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err(anyhow::anyhow!(
        "cannot reach the scheduler at {url}: {last:?}"
    ))
}
