#![allow(clippy::unwrap_used, clippy::panic)] // an integration test file: every function here is test code
//! `make dev` as a person meets it (infra/local/dev.py, the script it runs): a port in
//! use is said before anything starts; the runtime is restarted after a crash and the
//! emulator's data is kept; an explicit `HOOKLINE_ALLOW_PRIVATE_TARGETS=false` is honoured.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hookline_e2e::{venv_python, workspace_root};
use serde_json::{Value, json};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn dev(port: u16, extra: &[(&str, &str)]) -> Command {
    let mut command = Command::new(venv_python());
    command
        .arg(workspace_root().join("infra/local/dev.py"))
        .env("PORT", port.to_string())
        .env("CARGO_TARGET_DIR", workspace_root().join("target"))
        .envs(extra.iter().copied());
    command
}

/// The pids of `parent`'s children named `name` (read from /proc).
fn children(parent: u32, name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid = stat[close + 2..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if comm == name && ppid == Some(parent) {
            found.push(stat[..open].trim().parse().unwrap());
        }
    }
    found
}

async fn wait_healthy(http: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{url}/v1/health")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("make dev never answered on {url}");
}

#[test]
fn a_port_in_use_is_said_before_anything_starts() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let started = Instant::now();
    let out = dev(port, &[]).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("port {port} is in use; set PORT=")),
        "{stderr}"
    );
    assert!(!stdout.contains("running"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_crashed_runtime_is_restarted_and_the_data_kept() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut dev = dev(
        port,
        &[
            ("HOOKLINE_ALLOW_PRIVATE_TARGETS", "false"),
            ("HOOKLINE_ADMIN_KEY", "dev-test-admin-key"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let http = hookline_core::tls::reqwest_builder().build().unwrap();
    wait_healthy(&http, &url).await;
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let mut request = http
                .request(method, format!("{url}{path}"))
                .bearer_auth("dev-test-admin-key");
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or_default())
        }
    };
    // The explicit `false` is honoured: loopback is refused, as in production.
    let (status, body) = call(
        reqwest::Method::POST,
        "/v1/projects/dev/webhooks".into(),
        Some(json!({"name": "local", "url": "http://127.0.0.1:9/hook", "events": ["*"]})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("forbidden_target")),
        "{body}"
    );
    let (status, created) = call(
        reqwest::Method::POST,
        "/v1/projects/dev/webhooks".into(),
        Some(json!({"name": "kept", "url": "https://example.com/hook", "events": ["*"]})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    // A crash of the runtime…
    let before = children(dev.id(), "hookline-local");
    assert_eq!(before.len(), 1, "{before:?}");
    Command::new("kill")
        .args(["-KILL", &before[0].to_string()])
        .status()
        .unwrap();
    // …is followed by a new runtime against the same emulator.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = children(dev.id(), "hookline-local");
        if now.len() == 1 && now != before {
            break;
        }
        assert!(Instant::now() < deadline, "no new runtime after the crash");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_healthy(&http, &url).await;
    let (status, got) = call(
        reqwest::Method::GET,
        format!("/v1/projects/dev/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!((status, got["name"].as_str()), (200, Some("kept")), "{got}");

    // Ctrl-C (SIGTERM here) stops everything.
    Command::new("kill")
        .args(["-TERM", &dev.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = dev.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "make dev did not stop");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
}

/// The README's "Try it locally" block as a person pastes it into a second terminal, with
/// only its two ports moved to free ones: the receiver it starts prints the delivery and
/// the test send, and none of its calls is answered with an error.
#[tokio::test]
async fn the_readme_walkthrough_works_as_written() {
    use std::os::unix::process::CommandExt;

    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let section = readme.split("\n## Try it locally").nth(1).unwrap();
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap();
    // The ports it names, each where the test moves it, and no other.
    let api = "127.0.0.1:3000";
    let (target, listen) = ("127.0.0.1:9000", "(\"127.0.0.1\", 9000)");
    assert_eq!(
        (block.matches("3000").count(), block.matches("9000").count()),
        (
            block.matches(api).count(),
            block.matches(target).count() + block.matches(listen).count()
        ),
        "a port the test would not move:\n{block}"
    );
    assert!(block.contains(api) && block.contains(target) && block.contains(listen));
    let (port, receiver) = (free_port(), free_port());
    let script = block
        .replace(api, &format!("127.0.0.1:{port}"))
        .replace(target, &format!("127.0.0.1:{receiver}"))
        .replace(listen, &format!("(\"127.0.0.1\", {receiver})"));

    let url = format!("http://127.0.0.1:{port}");
    let mut dev = dev(port, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = hookline_core::tls::reqwest_builder().build().unwrap();
    wait_healthy(&http, &url).await;

    let out_path = std::env::temp_dir().join(format!("readme-walkthrough-{port}.out"));
    let out = std::fs::File::create(&out_path).unwrap();
    // Its own process group: the receiver it starts in the background outlives it.
    let mut walk = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .process_group(0)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let walked = walk.wait().unwrap();
    let delivered = r#" {"email":"n/a","order":"A-1"}"#.to_string();
    // Should the receiver start after the event's first attempt (a busy machine), its
    // retry, a minute later, delivers it.
    let deadline = Instant::now() + Duration::from_secs(90);
    let output = loop {
        let output = std::fs::read_to_string(&out_path).unwrap();
        if output.contains(&delivered) || Instant::now() > deadline {
            break output;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", walk.id())])
        .status()
        .unwrap();
    Command::new("kill")
        .args(["-TERM", &dev.id().to_string()])
        .status()
        .unwrap();
    let _ = dev.wait();
    let _ = std::fs::remove_file(&out_path);

    assert!(walked.success(), "{walked:?}\n{output}");
    for expected in [
        // The receiver's line for the event: its webhook-id, then the body.
        delivered.as_str(),
        // And for the test send, which renders the sample event.
        r#""order":"obj_sample"}"#,
        r#""signing_secret":"whsec_"#,
        r#"{"event_id":"ord-1","matched":1,"duplicate":false}"#,
        r#""attempt":1,"status":"delivered""#,
        r#""enabled":false"#,
        r#""enabled":true"#,
    ] {
        assert!(output.contains(expected), "no {expected} in:\n{output}");
    }
    assert!(output.contains("msg_"), "{output}");
    // An error answer is `{"error": {…}}`; an attempt's `"error": null` is not one.
    assert!(!output.contains(r#""error":{"#), "{output}");
}
