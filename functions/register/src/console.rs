//! The web console (SPEC §11): static assets compiled into the binary and served at
//! `/console`, with a Content-Security-Policy that allows nothing but this origin's own
//! scripts, styles and API (no inline script or style, no framing).
//!
//! Plain ES modules rather than a toolchain: the console is a few forms and tables over
//! the JSON API, modules load natively in every browser that the console targets, and
//! without a build step there is nothing to install, lock or run offline before the
//! binary embeds the files as they are in `functions/register/console/`.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};

use hookline_core::api::ApiError;

/// What the console's pages may load and reach: this origin only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The assets: name, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../console/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/dom.js"),
    ),
    (
        "form.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/form.js"),
    ),
    (
        "pager.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/pager.js"),
    ),
    (
        "webhooks.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/webhooks.js"),
    ),
    (
        "events.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/events.js"),
    ),
    (
        "keys.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/keys.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../console/style.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../console/icon.svg"),
    ),
];

/// The console's routes (not part of the JSON API, so not in its OpenAPI document; the
/// SAM template routes them to this function all the same).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Vec<(&'static str, MethodRouter<S>)> {
    vec![(PATHS[0], get(index)), (PATHS[1], get(asset))]
}

/// The console's paths, as the router and the SAM template name them.
pub const PATHS: [&str; 2] = ["/console", "/console/{file}"];

async fn index() -> Response {
    serve("index.html").unwrap_or_else(|| ApiError::NotFound.into_response())
}

async fn asset(Path(file): Path<String>) -> Response {
    serve(&file).unwrap_or_else(|| ApiError::NotFound.into_response())
}

fn serve(name: &str) -> Option<Response> {
    let (_, content_type, body) = ASSETS.iter().find(|(n, _, _)| *n == name)?;
    let mut response = (StatusCode::OK, *body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, *content_type),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        // Embedded in the binary: a deployment changes them, so always revalidate.
        (header::CACHE_CONTROL, "no-cache"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_pages_load_is_embedded_and_no_page_carries_inline_code() {
        let names: Vec<&str> = ASSETS.iter().map(|(n, _, _)| *n).collect();
        for (name, _, body) in ASSETS {
            // What the pages refer to (`/console/x`, `./x.js`) is served.
            for prefix in ["/console/", "./"] {
                for part in body.split(prefix).skip(1) {
                    let referred: String = part
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                        .collect();
                    if referred.ends_with(".js")
                        || referred.ends_with(".css")
                        || referred.ends_with(".svg")
                    {
                        assert!(
                            names.contains(&referred.as_str()),
                            "{name} refers to {referred}"
                        );
                    }
                }
            }
            if name.ends_with(".js") {
                // Text only: nothing that parses markup or runs strings as code.
                for banned in [
                    "innerHTML",
                    "outerHTML",
                    "insertAdjacentHTML",
                    "document.write",
                    "eval(",
                    "new Function",
                    "localStorage.setItem(CREDENTIAL",
                    "document.cookie",
                ] {
                    assert!(!body.contains(banned), "{name} uses {banned}");
                }
            }
        }
        let index = ASSETS[0].2;
        assert!(
            !index.contains("<script>") && !index.contains("style="),
            "inline code in index.html"
        );
        assert!(!index.contains("<style"), "inline style in index.html");
    }

    #[test]
    fn the_policy_is_at_least_what_the_spec_asks() {
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(CONTENT_SECURITY_POLICY.contains(directive), "{directive}");
        }
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    }
}
