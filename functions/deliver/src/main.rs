//! Lambda entrypoint of the delivery function: the SQS event source (ReportBatchItemFailures)
//! and the scheduled sweep.

use std::time::{Duration, Instant};

use deliver::Invocation;
use lambda_runtime::{LambdaEvent, service_fn};

/// Each delivery parses a task, builds a render context and writes an attempt record:
/// many small allocations, which mimalloc serves faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One thread: the function runs on a fraction of a vCPU (256 MB), and its work is
/// waiting on receivers. A multi-threaded runtime would only add cross-thread wake-ups
/// between the handler and the HTTP connections' tasks (`make bench` measures both).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    hookline_core::logging::init();
    let config = hookline_core::Config::from_env()?;
    let aws = hookline_core::aws::load().await;
    let deliverer = &deliver::Deliverer::from_config(&config, &aws)?;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Invocation>| async move {
            let left = event
                .context
                .deadline
                .saturating_sub(hookline_core::clock::now_ms() as u64);
            let deadline = Instant::now() + Duration::from_millis(left);
            Ok::<_, lambda_runtime::Error>(deliverer.invoke(event.payload, deadline).await)
        },
    ))
    .await
}
