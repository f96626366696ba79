//! A bare `lambda_runtime` function that echoes its event: what a Lambda costs before it
//! does any work. `make bench-coldstart` starts it beside Hookline's functions.
//! `BARE_FLAVOR=current_thread` runs it on tokio's one-thread runtime (the delivery
//! function's), anything else on the multi-thread one (the API functions').

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

fn main() -> Result<(), lambda_runtime::Error> {
    let mut runtime = if std::env::var("BARE_FLAVOR").as_deref() == Ok("current_thread") {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    runtime.enable_all().build()?.block_on(lambda_runtime::run(service_fn(
        |event: LambdaEvent<Value>| async move { Ok::<_, lambda_runtime::Error>(event.payload) },
    )))
}
