//! `make bench-e2e`: events through the local stack (emulator + hookline-local) at a fixed
//! offered load — delivered events per second and trigger-to-receipt latency (p50, p99),
//! from the POST's start to the receiver getting the webhook.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: failing loudly is right

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hookline_e2e::receiver;
use hookline_e2e::stack::{Stack, eventually};
use serde_json::{Value, json};

const RATE_PER_SECOND: u64 = 20;
const SECONDS: u64 = 15;

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let stack = Stack::start(&[]).await;
        let rx = receiver::start().await;
        stack
            .webhook("bench", json!({"name": "b", "url": format!("{}/ok/bench", rx.base), "events": ["load"]}))
            .await;
        let total = (RATE_PER_SECOND * SECONDS) as usize;
        let interval = Duration::from_millis(1_000 / RATE_PER_SECOND);
        let mut posted: HashMap<String, Instant> = HashMap::new();
        let started = Instant::now();
        let mut ticker = tokio::time::interval(interval);
        let mut inflight = Vec::new();
        for i in 0..total {
            ticker.tick().await;
            let id = format!("bench-{i}");
            posted.insert(id.clone(), Instant::now());
            let client = stack.http.clone();
            let url = format!("{}/v1/projects/bench/events", stack.url);
            inflight.push(tokio::spawn(async move {
                let r = client
                    .post(url)
                    .bearer_auth(hookline_e2e::stack::ADMIN_KEY)
                    .json(&json!({"id": id, "type": "load"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
            }));
        }
        for t in inflight {
            t.await.unwrap();
        }
        eventually(600, || async { (rx.received_on("/ok/bench").len() >= total).then_some(()) }).await;
        let elapsed = started.elapsed();
        let mut latencies: Vec<Duration> = rx
            .received_on("/ok/bench")
            .iter()
            .map(|r| {
                let body: Value = serde_json::from_str(&r.body).unwrap();
                r.at - posted[body["id"].as_str().unwrap()]
            })
            .collect();
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        println!(
            "e2e: offered {RATE_PER_SECOND} events/s for {SECONDS} s; delivered {total} in {:.1} s = {:.1} events/s; \
             trigger-to-receipt p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64(),
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            latencies.last().unwrap().as_secs_f64() * 1e3,
        );
    });
}
