//! Lambda entrypoint of the registration API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hookline_core::logging::init();
    let config = hookline_core::Config::from_env()?;
    let aws = hookline_core::aws::load().await;
    let state = register::AppState::from_config(&config, &aws).await?;
    lambda_http::run(register::router(state)).await
}
