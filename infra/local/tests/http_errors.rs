#![allow(clippy::unwrap_used, clippy::panic)] // an integration test file: every function here is test code
//! SPEC §8: errors from the HTTP layer carry the JSON error shape, including the ones
//! hyper answers by itself before any router sees the request.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use hookline_core::api;

async fn server() -> std::net::SocketAddr {
    let router = api::router::<()>(vec![("/v1/health", axum::routing::get(api::health))]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(hookline_local::http::Listener(listener), router)
            .await
            .unwrap();
    });
    addr
}

/// Sends `request` as raw bytes; returns the status and the JSON body.
async fn raw(addr: std::net::SocketAddr, request: Vec<u8>) -> (u16, serde_json::Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before it has read everything: that is fine.
    let _ = stream.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no answer: {text:?}"));
    let status = head[9..12].parse().unwrap();
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("content-type: application/json"), "{head}");
    (
        status,
        serde_json::from_str(body).unwrap_or_else(|_| panic!("{body:?}")),
    )
}

fn get(path: &str, headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{headers}\r\n").into_bytes()
}

#[tokio::test]
async fn http_layer_errors_carry_the_error_shape() {
    let addr = server().await;
    let long_uri = format!("/v1/health?x={}", "a".repeat(70_000));
    let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    let huge = format!("x-big: {}\r\n", "b".repeat(500_000));
    for (what, request, status, code) in [
        ("a 70 KB URI", get(&long_uri, ""), 414, "uri_too_long"),
        ("150 headers", get("/v1/health", &many), 431, "headers_too_large"),
        ("a 500 KB header", get("/v1/health", &huge), 431, "headers_too_large"),
        (
            "a malformed request line",
            b"GET /v1/health HTTP/1.1 extra\r\nhost: x\r\n\r\n".to_vec(),
            400,
            "malformed_request",
        ),
        (
            "an Expect it cannot meet",
            get("/v1/health", "expect: 200-ok\r\n"),
            417,
            "expectation_failed",
        ),
        (
            "a body declared larger than 256 KiB",
            b"POST /v1/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 99999999999\r\n\r\n".to_vec(),
            413,
            "payload_too_large",
        ),
    ] {
        let (got, body) = raw(addr, request).await;
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)), "{what}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}");
    }
    // And an ordinary request still works, 100-continue included.
    let (status, body) = raw(addr, get("/v1/health", "expect: 100-continue\r\n"))
        .await
        .clone();
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
}
