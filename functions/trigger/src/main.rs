//! Lambda entrypoint of the event-intake API.

/// A fan-out builds a task and a message per matched webhook: many small allocations,
/// which mimalloc serves faster than the system allocator (`cargo bench -p hookline-e2e
/// --bench fanout` measures with it).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hookline_core::logging::init();
    let config = hookline_core::Config::from_env()?;
    let aws = hookline_core::aws::load().await;
    let state = trigger::AppState::from_config(&config, &aws).await?;
    lambda_http::run(trigger::router(state)).await
}
