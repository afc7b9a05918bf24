//! Tests of the configuration: every variable, its defaults, and that
//! no error message shows a secret.

use std::collections::HashMap;

use super::*;

#[test]
fn webhook_secrets_are_checked_and_hidden() {
    assert!(WebhookSecret::new("short").is_err());
    let s = WebhookSecret::new("whsec_0123456789abcdef").unwrap();
    assert!(!format!("{s:?}").contains("0123"));
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn good() -> Vec<(&'static str, String)> {
    let app = AppPrivateKey::generate().unwrap();
    let ali = AppPrivateKey::generate().unwrap();
    vec![
        ("ALIPAY_APP_ID", "2021000122671080".into()),
        ("ALIPAY_APP_PRIVATE_KEY", app.to_pkcs8_pem().unwrap()),
        ("ALIPAY_PUBLIC_KEY", ali.public_key().to_base64()),
        ("ZHIFU_PUBLIC_URL", "https://shop.example.com/".into()),
        ("ZHIFU_API_KEY", "0123456789abcdef0123".into()),
        ("ZHIFU_DATABASE_URL", "sqlite::memory:".into()),
    ]
}

fn with(over: &[(&'static str, &str)]) -> Result<Config, ConfigError> {
    let mut m: HashMap<String, String> =
        good().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    for (k, v) in over {
        m.insert((*k).to_owned(), (*v).to_owned());
    }
    Config::from_source(&Source::from_map(m)?)
}

#[test]
fn good_config_parses_with_defaults() {
    let c = with(&[]).unwrap();
    assert_eq!(c.port, 9000);
    assert!(c.webhook.is_none());
    assert_eq!(c.db_acquire_timeout, Duration::from_secs(5));
    assert_eq!(c.settings.public_url, "https://shop.example.com");
    assert_eq!(
        c.settings.notify_url(),
        "https://shop.example.com/alipay/notify"
    );
    assert_eq!(c.settings.gateway, PRODUCTION_GATEWAY);
    assert!(c.auto_migrate);
    assert_eq!(c.settings.default_expiry_minutes, 30);
    let money = &c.settings.money;
    assert_eq!(money.late_payment, LatePaymentPolicy::Refund);
    assert_eq!(money.refund_spacing, Duration::from_secs(3));
    assert_eq!(money.close_margin, Duration::from_secs(120));
    assert!(
        money.refund_lease > Duration::from_secs(30),
        "outlasts two gateway timeouts"
    );
}

#[test]
fn money_policy_reads_its_variables() {
    let c = with(&[
        ("ZHIFU_PAID_AFTER_CLOSE", "keep"),
        ("ZHIFU_REFUND_SPACING_MS", "0"),
        ("ZHIFU_REFUND_LEASE_SECS", "5"),
        ("ZHIFU_CLOSE_MARGIN_SECS", "30"),
    ])
    .unwrap();
    let money = &c.settings.money;
    assert_eq!(money.late_payment, LatePaymentPolicy::Keep);
    assert_eq!(money.refund_spacing, Duration::ZERO);
    assert_eq!(money.refund_lease, Duration::from_secs(5));
    assert_eq!(money.close_margin, Duration::from_secs(30));
}

#[test]
fn each_bad_value_names_its_variable_and_hides_secrets() {
    for (var, value) in [
        ("ALIPAY_APP_ID", "abc"),
        ("ALIPAY_APP_PRIVATE_KEY", "not-a-key-SECRETMARKER"),
        ("ALIPAY_PUBLIC_KEY", "garbage-SECRETMARKER"),
        ("ALIPAY_SELLER_ID", "12345"),
        ("ALIPAY_GATEWAY", "ftp://x"),
        ("ZHIFU_PUBLIC_URL", "shop.example.com"),
        ("ZHIFU_API_KEY", "short"),
        ("ZHIFU_DATABASE_URL", "oracle://x"),
        ("PORT", "70000"),
        ("ZHIFU_DB_MAX_CONNECTIONS", "lots"),
        ("ZHIFU_AUTO_MIGRATE", "maybe"),
        ("ZHIFU_ORDER_EXPIRY_MINUTES", "999999"),
        ("FC_CUSTOM_LISTEN_PORT", "x"),
        ("FC_SERVER_PORT", "-1"),
        ("ZHIFU_DB_ACQUIRE_TIMEOUT_SECS", "0"),
        ("ZHIFU_DB_POOLER", "session"),
        ("ZHIFU_WEBHOOK_URL", "ftp://x"),
        ("ZHIFU_RECONCILE_LIMIT", "0"),
        ("ZHIFU_RECONCILE_MIN_AGE_SECS", "many"),
        ("ZHIFU_RECONCILE_LEASE_SECS", "1"),
        ("ZHIFU_PAID_AFTER_CLOSE", "ignore"),
        ("ZHIFU_RECONCILE_EVERY_SECS", "soon"),
        ("ZHIFU_HEADER_TIMEOUT_SECS", "0"),
        ("ZHIFU_MAX_CONNECTIONS", "0"),
        ("ZHIFU_REFUND_SPACING_MS", "-5"),
        ("ZHIFU_REFUND_LEASE_SECS", "0"),
        ("ZHIFU_CLOSE_MARGIN_SECS", "99999"),
    ] {
        let err = with(&[(var, value)]).unwrap_err();
        assert_eq!(err.var, var, "{var}");
        assert!(!err.to_string().contains("SECRETMARKER"), "{err}");
    }
    let m: HashMap<String, String> = good()
        .into_iter()
        .filter(|(k, _)| *k != "ALIPAY_APP_ID")
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let err = Config::from_source(&Source::from_map(m).unwrap()).unwrap_err();
    assert_eq!(err.to_string(), "ALIPAY_APP_ID: must be set");
}

#[test]
fn port_comes_from_the_platform_first() {
    assert_eq!(with(&[("PORT", "8081")]).unwrap().port, 8081);
    assert_eq!(
        with(&[("PORT", "8081"), ("FC_SERVER_PORT", "9001")])
            .unwrap()
            .port,
        9001
    );
    assert_eq!(
        with(&[
            ("PORT", "8081"),
            ("FC_SERVER_PORT", "9001"),
            ("FC_CUSTOM_LISTEN_PORT", "9002")
        ])
        .unwrap()
        .port,
        9002
    );
}

#[test]
fn webhook_settings_need_a_secret_and_hide_it() {
    let err = with(&[("ZHIFU_WEBHOOK_URL", "https://merchant.example/hooks")]).unwrap_err();
    assert_eq!(err.var, "ZHIFU_WEBHOOK_SECRET");
    let err = with(&[
        ("ZHIFU_WEBHOOK_URL", "https://merchant.example/hooks"),
        ("ZHIFU_WEBHOOK_SECRET", "SECRETMARKER"),
    ])
    .unwrap_err();
    assert_eq!(err.var, "ZHIFU_WEBHOOK_SECRET");
    assert!(!err.to_string().contains("SECRETMARKER"));
    let c = with(&[
        ("ZHIFU_WEBHOOK_URL", "https://merchant.example/hooks"),
        ("ZHIFU_WEBHOOK_SECRET", "whsec_SECRETMARKER_0123456789"),
        ("ZHIFU_WEBHOOK_MAX_ATTEMPTS", "3"),
        ("ZHIFU_RECONCILE_LIMIT", "7"),
    ])
    .unwrap();
    let w = c.webhook.unwrap();
    assert_eq!(
        (w.url.as_str(), w.max_attempts),
        ("https://merchant.example/hooks", 3)
    );
    assert_eq!(w.secret.as_bytes(), b"whsec_SECRETMARKER_0123456789");
    assert!(!format!("{w:?}").contains("SECRETMARKER"));
    assert_eq!(c.reconcile.limit, 7);

    // Delivery: after the answer unless set; an entry point that ends with
    // its answer prefers inline, but never over an explicit choice.
    let hooks = [
        ("ZHIFU_WEBHOOK_URL", "https://merchant.example/hooks"),
        ("ZHIFU_WEBHOOK_SECRET", "whsec_0123456789abcdef"),
    ];
    let mut w = with(&hooks).unwrap().webhook.unwrap();
    assert_eq!(w.delivery(), WebhookDelivery::AfterAnswer);
    w.prefer_inline(w.inline_budget);
    assert_eq!(
        w.delivery(),
        WebhookDelivery::Inline {
            budget: Duration::from_millis(1_000)
        }
    );
    let mut explicit = hooks.to_vec();
    explicit.push(("ZHIFU_WEBHOOK_DELIVERY", "after_answer"));
    let mut w = with(&explicit).unwrap().webhook.unwrap();
    w.prefer_inline(w.inline_budget);
    assert_eq!(w.delivery(), WebhookDelivery::AfterAnswer);
    let mut inline = hooks.to_vec();
    inline.extend([
        ("ZHIFU_WEBHOOK_DELIVERY", "inline"),
        ("ZHIFU_WEBHOOK_INLINE_BUDGET_MS", "250"),
    ]);
    assert_eq!(
        with(&inline).unwrap().webhook.unwrap().delivery(),
        WebhookDelivery::Inline {
            budget: Duration::from_millis(250)
        }
    );
}

#[test]
fn the_app_key_is_refused_as_alipay_key() {
    let app = AppPrivateKey::generate().unwrap();
    let pem = app.to_pkcs8_pem().unwrap();
    let own = app.public_key().to_base64();
    let err = with(&[
        ("ALIPAY_APP_PRIVATE_KEY", pem.as_str()),
        ("ALIPAY_PUBLIC_KEY", own.as_str()),
    ])
    .unwrap_err();
    assert_eq!(err.var, "ALIPAY_PUBLIC_KEY");
}

#[test]
fn toml_file_and_key_files_are_read_env_wins() {
    let dir = tempfile_dir();
    let app = AppPrivateKey::generate().unwrap();
    let key_path = dir.join("app.pem");
    std::fs::write(&key_path, app.to_pkcs8_pem().unwrap()).unwrap();
    let ali = AppPrivateKey::generate().unwrap().public_key().to_base64();
    let toml_path = dir.join("zhifu.toml");
    std::fs::write(
        &toml_path,
        format!(
            "alipay_app_id = \"2021000000000001\"\nalipay_app_private_key_file = {:?}\n\
             alipay_public_key = {ali:?}\nzhifu_public_url = \"http://127.0.0.1:1\"\n\
             zhifu_api_key = \"from-file-0123456789\"\nzhifu_database_url = \"sqlite::memory:\"\n\
             port = 9000\nalipay_gateway = \"sandbox\"\n",
            key_path.display().to_string()
        ),
    )
    .unwrap();
    let c = Config::from_source(
        &Source::from_map(env(&[
            ("ZHIFU_CONFIG", toml_path.to_str().unwrap()),
            ("PORT", "9100"),
        ]))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(c.settings.app_id, "2021000000000001");
    assert_eq!(c.port, 9100);
    assert_eq!(c.settings.gateway, SANDBOX_GATEWAY);
    assert!(c.settings.api_key.matches("from-file-0123456789"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn api_key_compare_and_debug() {
    let k = ApiKey::new("0123456789abcdefXYZ").unwrap();
    assert!(k.matches("0123456789abcdefXYZ"));
    assert!(!k.matches("0123456789abcdefXYz"));
    assert!(!k.matches(""));
    assert!(!format!("{k:?}").contains("0123"));
    assert!(ApiKey::generate().expose().len() >= ApiKey::MIN_LEN);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("zhifu-cfg-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn metrics_access_is_off_by_default_and_the_token_is_checked_and_hidden() {
    use crate::config::MetricsAccess;
    let src = |pairs: &[(&str, &str)]| {
        Source::from_map(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
        .unwrap()
    };
    assert_eq!(
        MetricsAccess::from_source(&src(&[])).unwrap(),
        MetricsAccess::Off
    );
    assert_eq!(
        MetricsAccess::from_source(&src(&[("ZHIFU_METRICS_PUBLIC", "true")])).unwrap(),
        MetricsAccess::Public
    );
    let e = MetricsAccess::from_source(&src(&[("ZHIFU_METRICS_TOKEN", "short")])).unwrap_err();
    assert!(e.to_string().contains("ZHIFU_METRICS_TOKEN"), "{e}");
    assert!(!e.to_string().contains("short"), "{e}");
    let both = src(&[
        ("ZHIFU_METRICS_TOKEN", "metrics-token-0123456789"),
        ("ZHIFU_METRICS_PUBLIC", "true"),
    ]);
    assert!(MetricsAccess::from_source(&both).is_err());
    let t =
        MetricsAccess::from_source(&src(&[("ZHIFU_METRICS_TOKEN", "metrics-token-0123456789")]))
            .unwrap();
    assert!(!format!("{t:?}").contains("metrics-token"));
    assert!(t.allows(Some("Bearer metrics-token-0123456789")));
    assert!(!t.allows(Some("Bearer metrics-token-012345678")));
    assert!(!t.allows(None));
    assert!(MetricsAccess::Public.allows(None));
    assert!(!MetricsAccess::Off.allows(Some("Bearer metrics-token-0123456789")));
}

#[test]
fn the_pooler_setting_reaches_the_store_and_is_postgres_only() {
    assert_eq!(
        with(&[]).unwrap().store_options().pooler,
        zhifu_store::Pooler::None
    );
    let pg = with(&[
        ("ZHIFU_DATABASE_URL", "postgres://u@127.0.0.1:6432/zhifu"),
        ("ZHIFU_DB_POOLER", "transaction"),
    ])
    .unwrap();
    assert_eq!(pg.store_options().pooler, zhifu_store::Pooler::Transaction);
    // The default database of these tests is SQLite: no pooler there.
    let err = with(&[("ZHIFU_DB_POOLER", "transaction")]).unwrap_err();
    assert_eq!(err.var, "ZHIFU_DB_POOLER");
}

#[test]
fn authorize_url_defaults_to_production_and_takes_sandbox_or_a_url() {
    assert_eq!(
        with(&[]).unwrap().oauth_authorize_url,
        alipay::oauth::OAUTH_AUTHORIZE_URL
    );
    assert_eq!(
        with(&[("ZHIFU_ALIPAY_AUTHORIZE_URL", "sandbox")])
            .unwrap()
            .oauth_authorize_url,
        alipay::oauth::SANDBOX_OAUTH_AUTHORIZE_URL
    );
    assert_eq!(
        with(&[(
            "ZHIFU_ALIPAY_AUTHORIZE_URL",
            "http://127.0.0.1:8080/sandbox/oauth2/publicAppAuthorize.htm"
        )])
        .unwrap()
        .oauth_authorize_url,
        "http://127.0.0.1:8080/sandbox/oauth2/publicAppAuthorize.htm"
    );
    for bad in ["ftp://x", "not a url", "https://a.example/?app_id=1"] {
        let e = with(&[("ZHIFU_ALIPAY_AUTHORIZE_URL", bad)]).unwrap_err();
        assert!(e.to_string().contains("ZHIFU_ALIPAY_AUTHORIZE_URL"), "{e}");
    }
}

#[test]
fn agreement_sign_scene_has_a_default_and_is_checked() {
    assert_eq!(
        with(&[]).unwrap().agreement_sign_scene,
        super::DEFAULT_AGREEMENT_SIGN_SCENE
    );
    assert_eq!(
        with(&[("ZHIFU_AGREEMENT_SIGN_SCENE", "INDUSTRY|MEMBERSHIP")])
            .unwrap()
            .agreement_sign_scene,
        "INDUSTRY|MEMBERSHIP"
    );
    for bad in [
        "DEFAULT|DEFAULT",
        "INDUSTRY",
        "A|B|C",
        "INDUSTRY|会员",
        "|X",
    ] {
        let e = with(&[("ZHIFU_AGREEMENT_SIGN_SCENE", bad)]).unwrap_err();
        assert!(
            e.to_string().contains("ZHIFU_AGREEMENT_SIGN_SCENE"),
            "{bad}: {e}"
        );
    }
}
