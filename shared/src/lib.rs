//! `hookline-core`: the domain every Hookline function shares.
//!
//! - [`model`]: webhooks, events, delivery tasks and attempts, with their validation.
//! - [`template`]: Liquid rendering of a webhook for an event (parse once, render many).
//! - [`retry`]: the retry rule table as a pure function.
//! - [`signing`]: Standard Webhooks signatures and the receiver-facing auth schemes.
//! - [`guard`]: where a webhook may point, enforced at registration and at connect time.
//! - [`sender`]: the one HTTP client that talks to receivers.
//! - [`config`]: the deployment's settings, read once from the environment.

pub mod api;
pub mod aws;
pub mod aws_http;
pub mod clock;
pub mod config;
pub mod error;
pub mod fanout;
pub mod guard;
pub mod health;
pub mod ids;
pub mod logging;
pub mod model;
pub mod queue;
pub mod retry;
pub mod sender;
pub mod signing;
pub mod store;
pub mod template;
pub mod tls;

pub use config::Config;
pub use error::{FieldError, Problem};
