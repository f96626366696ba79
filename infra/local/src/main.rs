//! `hookline-local`: the API on 127.0.0.1:$PORT (default 3000) and the delivery handler
//! fed from the delivery queue. `make dev` starts it with the emulator; see README.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hookline_local::{EventSource, api, poll, shutdown_signal};

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| format!("{name} must be a number, not `{v}`")),
        _ => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    hookline_core::logging::init();
    let config = hookline_core::Config::from_env()?;
    let port: u16 = env_number("PORT", 3000)?;
    let source = EventSource {
        batch_size: env_number("HOOKLINE_LOCAL_BATCH_SIZE", 10)?,
        batching_window: Duration::from_secs(env_number(
            "HOOKLINE_LOCAL_BATCHING_WINDOW_SECONDS",
            0,
        )?),
        concurrency: env_number("HOOKLINE_LOCAL_CONCURRENCY", 4)?,
    };
    let aws = hookline_core::aws::load().await;
    let register = register::router(register::AppState::from_config(&config, &aws).await?);
    let trigger = trigger::router(trigger::AppState::from_config(&config, &aws).await?);
    let deliverer = Arc::new(deliver::Deliverer::from_config(&config, &aws)?);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // The poller long-polls (20 s): its calls wait longer than the functions' do.
    let sqs = hookline_core::aws::sqs(&aws, hookline_core::config::Waits::LONG_POLL);
    let mut pollers = Vec::new();
    for _ in 0..source.concurrency.max(1) {
        pollers.push(tokio::spawn(poll(
            sqs.clone(),
            config.resources.delivery_queue_url.clone(),
            deliverer.clone(),
            source,
            stop_rx.clone(),
        )));
    }

    // The template's scheduled sweep, on a timer: finishes fan-outs a crash abandoned.
    let sweep_every = Duration::from_secs(env_number("HOOKLINE_LOCAL_SWEEP_SECONDS", 15)?.max(1));
    let sweeper = {
        let deliverer = deliverer.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tokio::time::sleep(sweep_every) => {}
                }
                let sweep = deliver::Invocation {
                    hookline: Some("sweep".to_string()),
                    ..Default::default()
                };
                let deadline = std::time::Instant::now() + deliver::FUNCTION_TIMEOUT;
                deliverer.invoke(sweep, deadline).await;
            }
        })
    };

    let listener =
        match tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await {
            Ok(listener) => listener,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(format!("port {port} is in use; set PORT=… to another").into());
            }
            Err(e) => return Err(format!("cannot listen on 127.0.0.1:{port}: {e}").into()),
        };
    tracing::info!(address = %listener.local_addr()?, "hookline-local listening");
    axum::serve(
        hookline_local::http::Listener(listener),
        api(register, trigger),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    tracing::info!("stopping: finishing the batches in hand");
    let _ = stop_tx.send(true);
    for poller in pollers {
        let _ = poller.await;
    }
    let _ = sweeper.await;
    Ok(())
}
