//! The AWS SDK's HTTP client: reqwest, the client the functions already carry for
//! webhooks, behind the SDK's `HttpClient` interface.
//!
//! The SDK's own client (aws-smithy-http-client) brings a second HTTP stack into every
//! binary: hyper-rustls, tokio-rustls, and HTTP/2 (h2, always compiled in), though
//! DynamoDB, SQS and Secrets Manager are spoken over HTTP/1.1. It also builds a TLS
//! configuration for each SDK client it serves, from PEM. One stack is smaller and
//! starts faster (`make bench-coldstart`).
//!
//! What the SDK asks of a connector is kept:
//! - the connect and read timeouts of [`HttpConnectorSettings`], one pooled client per
//!   distinct pair (the SDK asks for a connector on every attempt);
//! - errors classified as the SDK's retry rules expect: a timeout as a timeout, any
//!   other transport failure as I/O (retried as transient), a request it cannot send as
//!   the caller's error;
//! - no redirects followed: the SDK reads every response itself;
//! - no proxy from the environment (`HTTPS_PROXY` and the like), as the SDK's own client
//!   used none unless configured in code.
//!
//! The operation and attempt timeouts ([`crate::config::Waits`]) are the SDK
//! orchestrator's, around the whole call, response body included.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

/// The SDK's HTTP client, trusting what [`crate::tls::aws_client_config`] trusts.
pub fn client() -> SharedHttpClient {
    SharedHttpClient::new(Client {
        tls: crate::tls::aws_client_config(),
        connectors: Mutex::new(Vec::new()),
    })
}

type Timeouts = (Option<Duration>, Option<Duration>);

#[derive(Debug)]
struct Client {
    tls: rustls::ClientConfig,
    /// (connect, read) timeouts → the connector built for them.
    connectors: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

impl Client {
    fn build(&self, (connect, read): Timeouts) -> Connector {
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(self.tls.clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if let Some(connect) = connect {
            builder = builder.connect_timeout(connect);
        }
        if let Some(read) = read {
            builder = builder.read_timeout(read);
        }
        Connector(builder.build().map_err(|e| Arc::new(e.to_string())))
    }
}

impl HttpClient for Client {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self
            .connectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, connector)) = connectors.iter().find(|(k, _)| *k == key) {
            return connector.clone();
        }
        let connector = SharedHttpConnector::new(self.build(key));
        connectors.push((key, connector.clone()));
        connector
    }
}

/// A pooled reqwest client, or why it could not be built (then every call fails with
/// it, as the SDK's own client fails a call whose connector cannot be made).
#[derive(Debug)]
struct Connector(Result<reqwest::Client, Arc<String>>);

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = match &self.0 {
            Ok(client) => client.clone(),
            Err(why) => {
                return HttpConnectorFuture::ready(Err(ConnectorError::other(
                    why.to_string().into(),
                    None,
                )));
            }
        };
        HttpConnectorFuture::new(async move {
            let request = to_reqwest(request).await.map_err(ConnectorError::user)?;
            let response = client.execute(request).await.map_err(transport)?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(transport)?;
            let mut answer = http::Response::new(SdkBody::from(body));
            *answer.status_mut() = status;
            *answer.headers_mut() = headers;
            HttpResponse::try_from(answer).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The SDK's request as reqwest's, its body read to the end: the SDK wraps it to watch
/// the upload for stalls, and counts the upload done only once it has been read (taken
/// without reading, it looked stalled to the SDK whenever an answer took longer than the
/// grace period). No operation these functions call streams a body, so it is in memory.
async fn to_reqwest(request: HttpRequest) -> Result<reqwest::Request, BoxError> {
    let (parts, body) = request.try_into_http1x()?.into_parts();
    let body = http_body_util::BodyExt::collect(body).await?.to_bytes();
    Ok(reqwest::Request::try_from(http::Request::from_parts(
        parts, body,
    ))?)
}

/// A transport failure as the SDK's retry rules read it.
fn transport(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::timeout(e.into())
    } else {
        ConnectorError::io(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::post;

    fn connector(read: Option<Duration>) -> Connector {
        let client = Client {
            tls: crate::tls::aws_client_config(),
            connectors: Mutex::new(Vec::new()),
        };
        client.build((Some(Duration::from_secs(1)), read))
    }

    fn request(url: &str, body: &'static str) -> HttpRequest {
        let request = http::Request::builder()
            .method("POST")
            .uri(url)
            .header("x-amz-target", "DynamoDB_20120810.GetItem")
            .body(SdkBody::from(body))
            .unwrap();
        HttpRequest::try_from(request).unwrap()
    }

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn the_request_and_the_answer_pass_through_whole() {
        let base = serve(Router::new().route(
            "/",
            post(|headers: axum::http::HeaderMap, body: String| async move {
                let target = headers["x-amz-target"].to_str().unwrap().to_string();
                (
                    StatusCode::BAD_REQUEST,
                    [("x-amzn-requestid", "r-1")],
                    format!("{target} {body}"),
                )
            }),
        ))
        .await;
        let answer = connector(None)
            .call(request(&format!("{base}/"), r#"{"TableName":"t"}"#))
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 400);
        assert_eq!(answer.headers().get("x-amzn-requestid"), Some("r-1"));
        assert_eq!(
            answer.body().bytes().unwrap(),
            br#"DynamoDB_20120810.GetItem {"TableName":"t"}"#
        );
    }

    #[tokio::test]
    async fn a_redirect_is_handed_to_the_sdk_not_followed() {
        let base = serve(Router::new().route(
            "/",
            post(|| async { (StatusCode::TEMPORARY_REDIRECT, [("location", "/elsewhere")]) }),
        ))
        .await;
        let answer = connector(None)
            .call(request(&format!("{base}/"), "{}"))
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 307);
    }

    #[tokio::test]
    async fn a_refused_connection_is_io_and_a_silent_server_a_timeout() {
        // Retried by the SDK as transient: I/O for a refusal…
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let refused = connector(None)
            .call(request(&format!("http://{addr}/"), "{}"))
            .await
            .unwrap_err();
        assert!(refused.is_io(), "{refused:?}");
        // …and a timeout for a server that accepts and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let (socket, _) = silent.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(socket);
        });
        let stalled = connector(Some(Duration::from_millis(200)))
            .call(request(&format!("http://{addr}/"), "{}"))
            .await
            .unwrap_err();
        assert!(stalled.is_timeout(), "{stalled:?}");
        held.abort();
    }

    /// The SDK watches a request's upload for stalls while it waits for the answer, and
    /// counts the upload done only once its body has been read to the end. A body taken
    /// without being read looked stalled to it, so every answer slower than the grace
    /// period (5 s by default; a slow emulator after a crash) failed as a timeout.
    #[tokio::test]
    async fn an_answer_slower_than_the_stall_grace_period_is_not_a_stall() {
        let base = serve(Router::new().route(
            "/",
            post(|| async {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                (
                    [("content-type", "application/x-amz-json-1.0")],
                    r#"{"TableNames":["slow"]}"#,
                )
            }),
        ))
        .await;
        let sdk = crate::aws::config(
            Some(base),
            Some("us-east-1".to_string()),
            Some(aws_sdk_dynamodb::config::Credentials::new(
                "k", "s", None, None, "test",
            )),
        );
        let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .stalled_stream_protection(
                aws_sdk_dynamodb::config::StalledStreamProtectionConfig::enabled()
                    .grace_period(Duration::from_millis(300))
                    .build(),
            )
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .build();
        let tables = aws_sdk_dynamodb::Client::from_conf(config)
            .list_tables()
            .send()
            .await
            .unwrap();
        assert_eq!(tables.table_names(), ["slow"]);
    }

    #[tokio::test]
    async fn one_connector_per_pair_of_timeouts() {
        let client = Client {
            tls: crate::tls::aws_client_config(),
            connectors: Mutex::new(Vec::new()),
        };
        let components =
            aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder::for_tests()
                .build()
                .unwrap();
        let one = HttpConnectorSettings::builder()
            .connect_timeout(Duration::from_secs(1))
            .build();
        let other = HttpConnectorSettings::builder()
            .connect_timeout(Duration::from_secs(2))
            .build();
        client.http_connector(&one, &components);
        client.http_connector(&one, &components);
        client.http_connector(&other, &components);
        assert_eq!(client.connectors.lock().unwrap().len(), 2);
    }
}
