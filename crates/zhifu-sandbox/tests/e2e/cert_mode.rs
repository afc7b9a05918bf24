//! Certificate mode (公钥证书模式): app certificates issued through the
//! control API, `app_cert_sn` / `alipay_root_cert_sn` checked on every
//! request with the real `isv.*` errors, answers carrying `alipay_cert_sn`,
//! `alipay.open.app.alipaycert.download`, and rotation on command.

use alipay::{
    Alipay, AlipayCertStore, AlipayClient, CertSns, ClientConfig, Error, GenericRequest,
    RequestOptions,
};
use base64::Engine as _;
use serde_json::{Value, json};
use zhifu_sandbox::SandboxConfig;
use zhifu_sandbox::certs::{AppCertRequest, DOWNLOAD_METHOD};
use zhifu_sandbox::testing::{TestSandbox, auto_config, spawn_with};

async fn cert_sandbox() -> TestSandbox {
    spawn_with(SandboxConfig {
        cert_mode: true,
        ..auto_config()
    })
    .await
}

fn client(t: &TestSandbox, sns: CertSns, alipay_cert: &str) -> AlipayClient {
    let core = Alipay::builder(
        t.app_id.clone(),
        t.app_key(),
        AlipayCertStore::new(alipay_cert.as_bytes()).unwrap(),
    )
    .gateway(t.gateway.clone())
    .cert_sns(sns)
    .build();
    AlipayClient::new(core).with_config(ClientConfig {
        max_attempts: 1,
        ..Default::default()
    })
}

fn query() -> GenericRequest {
    GenericRequest::new(
        "alipay.trade.query",
        json!({"out_trade_no": "no-such-order"}),
    )
    .mark_retry_safe()
}

/// The `sub_code` of a refused call (verified when the answer was signed).
async fn sub_code(c: &AlipayClient) -> String {
    match c.execute(&query(), &RequestOptions::default()).await {
        Err(Error::Gateway(g)) => g.sub_code.clone().unwrap_or_default(),
        other => panic!("expected a gateway refusal, got {other:?}"),
    }
}

async fn json_of(resp: reqwest::Response) -> Value {
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.json().await.unwrap()
}

#[tokio::test]
async fn the_gateway_checks_the_serial_numbers_and_answers_with_its_own() {
    let t = cert_sandbox().await;
    let files = json_of(
        t.http
            .get(format!("{}/sandbox/api/certs", t.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let root = files["root_cert"].as_str().unwrap();
    let alipay_cert = files["alipay_cert"].as_str().unwrap();
    assert_eq!(
        files["alipay_root_cert_sn"],
        alipay::cert::root_cert_sn(root.as_bytes()).unwrap()
    );
    // An app certificate for the registered key, through the control API.
    let issued = json_of(
        t.http
            .post(format!("{}/sandbox/api/certs/app", t.base))
            .json(&json!({"app_id": t.app_id}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let app_cert = issued["app_cert"].as_str().unwrap();
    let sns = CertSns::from_certs(app_cert.as_bytes(), root.as_bytes()).unwrap();
    assert_eq!(issued["app_cert_sn"], sns.app_cert_sn);

    // Everything right: the business answer, verified by the certificate
    // named by alipay_cert_sn.
    let good = client(&t, sns.clone(), alipay_cert);
    assert_eq!(sub_code(&good).await, "ACQ.TRADE_NOT_EXIST");

    // Key mode (no serial numbers) against a certificate-mode gateway.
    let e = t
        .client
        .execute(&query(), &RequestOptions::default())
        .await
        .unwrap_err();
    let Error::Gateway(g) = e else {
        panic!("{e:?}")
    };
    assert_eq!(g.code, "40002");
    assert_eq!(g.sub_code.as_deref(), Some("isv.app-cert-not-exist"));

    // A wrong root SN (e.g. every root hashed).
    let wrong_root = CertSns {
        alipay_root_cert_sn: format!("{}_{}", sns.alipay_root_cert_sn, sns.app_cert_sn),
        ..sns.clone()
    };
    assert_eq!(
        sub_code(&client(&t, wrong_root, alipay_cert)).await,
        "isv.invalid-alipay-root-cert-sn"
    );

    // Another app's certificate.
    let other = t
        .register(Some(alipay::AppPrivateKey::generate().unwrap()))
        .await;
    let theirs = t
        .sandbox
        .issue_app_cert(Some(&other.app_id), AppCertRequest::RegisteredKey)
        .await
        .unwrap();
    let borrowed = CertSns {
        app_cert_sn: theirs.app_cert_sn,
        ..sns.clone()
    };
    assert_eq!(
        sub_code(&client(&t, borrowed, alipay_cert)).await,
        "isv.app-cert-not-exist"
    );

    // A certificate for a key the app does not sign with: the signature
    // is checked with the certified key.
    let stranger = alipay::AppPrivateKey::generate().unwrap();
    let wrong_key = t
        .sandbox
        .issue_app_cert(
            Some(&t.app_id),
            AppCertRequest::PublicKey(stranger.public_key().to_base64()),
        )
        .await
        .unwrap();
    let mismatched = CertSns {
        app_cert_sn: wrong_key.app_cert_sn,
        ..sns.clone()
    };
    assert_eq!(
        sub_code(&client(&t, mismatched, alipay_cert)).await,
        "isv.invalid-signature"
    );

    // Bad control requests.
    let r = t
        .http
        .post(format!("{}/sandbox/api/certs/app", t.base))
        .json(&json!({"app_id": t.app_id, "csr": "not a csr"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn rotation_changes_the_sn_and_the_old_certificates_stay_downloadable() {
    let t = cert_sandbox().await;
    let files = t.sandbox.cert_files().unwrap();
    let issued = t
        .sandbox
        .issue_app_cert(None, AppCertRequest::RegisteredKey)
        .await
        .unwrap();
    let sns = CertSns::from_certs(issued.app_cert.as_bytes(), files.root_cert.as_bytes()).unwrap();
    let old = client(&t, sns.clone(), &files.alipay_cert);
    assert_eq!(sub_code(&old).await, "ACQ.TRADE_NOT_EXIST");

    let rotated = json_of(
        t.http
            .post(format!("{}/sandbox/api/certs/rotate", t.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let new_sn = rotated["alipay_cert_sn"].as_str().unwrap().to_owned();
    assert_ne!(new_sn, files.alipay_cert_sn);
    // The old client does not know the new certificate.
    match old.execute(&query(), &RequestOptions::default()).await {
        Err(Error::UnknownAlipayCert(sn)) => assert_eq!(sn, new_sn),
        other => panic!("expected UnknownAlipayCert, got {other:?}"),
    }
    // The download answers the PEM, base64, for the new SN and the old one.
    for (sn, pem) in [
        (new_sn.as_str(), rotated["alipay_cert"].as_str().unwrap()),
        (files.alipay_cert_sn.as_str(), files.alipay_cert.as_str()),
    ] {
        let signed = old
            .core()
            .sign_request(
                &GenericRequest::new(DOWNLOAD_METHOD, json!({"alipay_cert_sn": sn}))
                    .mark_retry_safe(),
                &RequestOptions::default(),
                time::OffsetDateTime::now_utc(),
            )
            .unwrap();
        let raw = t
            .http
            .post(&t.gateway)
            .form(signed.params())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let body: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(body["alipay_cert_sn"], new_sn.as_str());
        let node = &body["alipay_open_app_alipaycert_download_response"];
        assert_eq!(node["code"], "10000", "{body}");
        let content = base64::engine::general_purpose::STANDARD
            .decode(node["alipay_cert_content"].as_str().unwrap())
            .unwrap();
        assert_eq!(String::from_utf8(content).unwrap(), pem);
        // What the backend checks before it trusts the download.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let root = files.root_cert.as_bytes();
        let got = alipay::cert::accept_download(&raw, sn, root, now).unwrap();
        assert_eq!((got.sn.as_str(), got.pem.as_str()), (sn, pem));
        // Asked for another SN, or against another root: refused.
        assert!(
            alipay::cert::accept_download(&raw, &files.alipay_root_cert_sn, root, now).is_err()
        );
        let other_root = zhifu_sandbox::certs::CertAuthority::generate().unwrap();
        assert!(
            alipay::cert::accept_download(&raw, sn, other_root.root_bundle_pem().as_bytes(), now)
                .is_err()
        );
    }
    // A tampered answer does not verify with the certificate it carries.
    let tampered = {
        let signed = old
            .core()
            .sign_request(
                &GenericRequest::new(DOWNLOAD_METHOD, json!({"alipay_cert_sn": new_sn}))
                    .mark_retry_safe(),
                &RequestOptions::default(),
                time::OffsetDateTime::now_utc(),
            )
            .unwrap();
        let text = t
            .http
            .post(&t.gateway)
            .form(signed.params())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.replacen("\"10000\"", "\"10000\" ", 1)
    };
    let e = alipay::cert::accept_download(
        &tampered,
        &new_sn,
        files.root_cert.as_bytes(),
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("signature"), "{e}");
    // A client that knows the new certificate works again, and a rotated
    // certificate still chains to the root.
    let new = client(&t, sns, rotated["alipay_cert"].as_str().unwrap());
    assert_eq!(sub_code(&new).await, "ACQ.TRADE_NOT_EXIST");
    alipay::cert::verify_chain(
        rotated["alipay_cert"].as_str().unwrap().as_bytes(),
        files.root_cert.as_bytes(),
        Some(time::OffsetDateTime::now_utc().unix_timestamp()),
    )
    .unwrap();
    // An untrusted rotation does not.
    let bad = t.sandbox.rotate_alipay_cert(true).unwrap();
    assert!(
        alipay::cert::verify_chain(bad.alipay_cert.as_bytes(), files.root_cert.as_bytes(), None)
            .is_err()
    );
}

#[tokio::test]
async fn key_mode_has_no_certificate_routes() {
    let t = spawn_with(auto_config()).await;
    let r = t
        .http
        .get(format!("{}/sandbox/api/certs", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(t.sandbox.rotate_alipay_cert(false).is_err());
}
