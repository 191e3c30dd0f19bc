//! The governed pipeline in-process, for `tandem edit --in-process` and `tandem task --in-process`:
//! the gateway is built from the configuration (policy, DLP, budgets, routing, audit ledger) and
//! served on a private loopback port for the agent alone, then shut down with it.

use anyhow::Context as _;

/// A gateway serving this process only; stops when dropped.
pub struct InProcess {
    /// Its base URL.
    pub base_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl InProcess {
    /// Builds the gateway from `config` (as `tandem serve` would) on `127.0.0.1:0`.
    async fn start(config: Option<&std::path::Path>) -> anyhow::Result<InProcess> {
        let env = |name: &str| std::env::var(name).ok();
        let config = tandem_config::load(config, &env).context("loading configuration")?;
        let state = tandem_gateway::AppState::from_config(&config)
            .await
            .context("starting the in-process gateway")?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding a loopback port")?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(err) = tandem_gateway::run(listener, state, shutdown).await {
                tracing::error!("in-process gateway: {err}");
            }
        });
        Ok(InProcess {
            base_url: format!("http://{addr}"),
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Runs `command` against a gateway started for it from `config`, then stops the gateway.
    pub async fn around<F, Fut, T>(
        config: Option<&std::path::Path>,
        command: F,
    ) -> anyhow::Result<T>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<T>>,
    {
        let gateway = InProcess::start(config).await?;
        let result = command(gateway.base_url.clone()).await;
        gateway.stop().await;
        result
    }

    /// Stops the gateway and waits until its records are flushed.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
