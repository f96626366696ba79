#![allow(clippy::unwrap_used)] // an integration test file: every function here is test code
//! On AWS the admin key lives in Secrets Manager and is read at cold start.

use std::collections::HashMap;

use hookline_core::Config;
use hookline_e2e::Emulator;

#[tokio::test]
async fn the_admin_key_is_read_from_secrets_manager() {
    let emulator = Emulator::start();
    let aws = emulator.sdk_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let arn = secrets
        .create_secret()
        .name("hookline-admin-key")
        .secret_string("from-secrets-manager-0123")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let mut vars: HashMap<String, String> = emulator.env.clone();
    vars.insert("HOOKLINE_ADMIN_KEY_SECRET_ARN".into(), arn);
    let config = Config::from_vars(&vars).unwrap();
    assert!(config.admin_key.is_none());
    let key = config.admin_key(&aws).await.unwrap().unwrap();
    assert_eq!(key.expose(), "from-secrets-manager-0123");

    vars.insert(
        "HOOKLINE_ADMIN_KEY_SECRET_ARN".into(),
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing".into(),
    );
    let err = Config::from_vars(&vars)
        .unwrap()
        .admin_key(&aws)
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("HOOKLINE_ADMIN_KEY_SECRET_ARN"),
        "{err}"
    );
}
