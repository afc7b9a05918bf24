//! How the backend verifies what Alipay signs: public-key mode
//! (`ALIPAY_PUBLIC_KEY`) or public-key-certificate mode (公钥证书模式,
//! docs/protocol.md §7) with `ALIPAY_APP_CERT` (`appCertPublicKey_<appid>.crt`),
//! `ALIPAY_PUBLIC_CERT` (`alipayCertPublicKey_RSA2.crt`) and
//! `ALIPAY_ROOT_CERT` (`alipayRootCert.crt`), each also as `…_FILE`.
//!
//! Any certificate variable selects certificate mode; then all three are
//! needed and `ALIPAY_PUBLIC_KEY` must not be set. The app certificate must
//! certify the app private key, and Alipay's certificate must not be the
//! app's own. Problems name the variable; certificates are public, but
//! messages still never repeat file contents.

use alipay::cert::{cert_public_key, cert_sn, root_cert_sn};
use alipay::{AlipayCertStore, AlipayPublicKey, AppPrivateKey, CertSns};

use std::time::Duration;

use super::source::{ConfigError, Source, parse_num};

/// The three certificate variables.
pub const APP_CERT: &str = "ALIPAY_APP_CERT";
/// Alipay's public-key certificate.
pub const PUBLIC_CERT: &str = "ALIPAY_PUBLIC_CERT";
/// Alipay's root certificate bundle.
pub const ROOT_CERT: &str = "ALIPAY_ROOT_CERT";
const PUBLIC_KEY: &str = "ALIPAY_PUBLIC_KEY";

/// The signing mode the backend runs in.
#[derive(Debug, Clone, Default)]
pub enum SigningMode {
    /// Public-key mode (公钥模式): `ALIPAY_PUBLIC_KEY` verifies Alipay.
    #[default]
    PublicKey,
    /// Certificate mode (公钥证书模式).
    Certificates(Box<CertificateSettings>),
}

impl SigningMode {
    /// `key` or `certificates`, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            SigningMode::PublicKey => "key",
            SigningMode::Certificates(_) => "certificates",
        }
    }
}

/// What certificate mode needs at run time. Certificates are public; the
/// `Debug` shows the serial numbers only.
#[derive(Clone)]
pub struct CertificateSettings {
    /// `app_cert_sn` of `ALIPAY_APP_CERT`.
    pub app_cert_sn: String,
    /// `alipay_root_cert_sn` of `ALIPAY_ROOT_CERT`.
    pub alipay_root_cert_sn: String,
    /// The SN of `ALIPAY_PUBLIC_CERT` (`alipay_cert_sn` of Alipay's answers).
    pub alipay_cert_sn: String,
    /// `ALIPAY_PUBLIC_CERT`, PEM.
    pub alipay_cert_pem: String,
    /// Alipay's certificates by SN, seeded with `ALIPAY_PUBLIC_CERT`.
    pub alipay_certs: AlipayCertStore,
    /// `ALIPAY_CERT_DOWNLOAD_INTERVAL_SECS` (default 60): the least time
    /// between two downloads of a new Alipay certificate by one instance.
    pub download_interval: Duration,
    /// `ALIPAY_ROOT_CERT`, PEM: what a downloaded Alipay certificate must
    /// chain to.
    pub root_cert_pem: String,
}

impl std::fmt::Debug for CertificateSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateSettings")
            .field("app_cert_sn", &self.app_cert_sn)
            .field("alipay_root_cert_sn", &self.alipay_root_cert_sn)
            .field("alipay_cert_sn", &self.alipay_cert_sn)
            .finish_non_exhaustive()
    }
}

impl CertificateSettings {
    /// The SNs every request carries.
    pub fn cert_sns(&self) -> CertSns {
        CertSns {
            app_cert_sn: self.app_cert_sn.clone(),
            alipay_root_cert_sn: self.alipay_root_cert_sn.clone(),
        }
    }

    /// Checks the three certificate files against each other and the app
    /// key (what `zhifu serve` does with `ALIPAY_APP_CERT`,
    /// `ALIPAY_PUBLIC_CERT`, `ALIPAY_ROOT_CERT`) and returns the key of
    /// Alipay's certificate with the settings.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable whose file is wrong.
    pub fn from_pems(
        app_key: &AppPrivateKey,
        app_pem: String,
        alipay_pem: String,
        root_pem: String,
        download_interval: Duration,
    ) -> Result<(AlipayPublicKey, Self), ConfigError> {
        let own = app_key.public_key();
        let app_cert_key = cert_public_key(app_pem.as_bytes())
            .map_err(|e| not_a_cert(APP_CERT, "appCertPublicKey_<appid>.crt", &e))?;
        let alipay_key = cert_public_key(alipay_pem.as_bytes())
            .map_err(|e| not_a_cert(PUBLIC_CERT, "alipayCertPublicKey_RSA2.crt", &e))?;
        if app_cert_key.spki_der() != own.spki_der() {
            let problem = if alipay_key.spki_der() == own.spki_der() {
                "is not the app's certificate, and ALIPAY_PUBLIC_CERT is: the two look swapped"
            } else {
                "certifies another key than ALIPAY_APP_PRIVATE_KEY's: use the \
                 appCertPublicKey_<appid>.crt issued for this key (or its CSR)"
            };
            return Err(ConfigError::new(APP_CERT, problem));
        }
        if alipay_key.spki_der() == own.spki_der() {
            return Err(ConfigError::new(
                PUBLIC_CERT,
                "is the app's own certificate; Alipay's is alipayCertPublicKey_RSA2.crt",
            ));
        }
        let app_cert_sn = cert_sn(app_pem.as_bytes())
            .map_err(|e| not_a_cert(APP_CERT, "appCertPublicKey_<appid>.crt", &e))?;
        let alipay_cert_sn = cert_sn(alipay_pem.as_bytes())
            .map_err(|e| not_a_cert(PUBLIC_CERT, "alipayCertPublicKey_RSA2.crt", &e))?;
        let alipay_certs = AlipayCertStore::new(alipay_pem.as_bytes())
            .map_err(|e| not_a_cert(PUBLIC_CERT, "alipayCertPublicKey_RSA2.crt", &e))?;
        let alipay_root_cert_sn = root_cert_sn(root_pem.as_bytes())
            .map_err(|e| not_a_cert(ROOT_CERT, "alipayRootCert.crt", &e))?;
        // A leaf given as the root bundle: its SN would be sent as
        // alipay_root_cert_sn and Alipay would refuse every call.
        for (var, sn) in [(APP_CERT, &app_cert_sn), (PUBLIC_CERT, &alipay_cert_sn)] {
            if alipay_root_cert_sn.split('_').any(|s| s == sn.as_str()) {
                return Err(ConfigError::new(
                    ROOT_CERT,
                    format!(
                        "holds the certificate of {var}; the root bundle is alipayRootCert.crt"
                    ),
                ));
            }
        }
        Ok((
            alipay_key,
            CertificateSettings {
                app_cert_sn,
                alipay_root_cert_sn,
                alipay_cert_sn,
                alipay_cert_pem: alipay_pem,
                alipay_certs,
                download_interval,
                root_cert_pem: root_pem,
            },
        ))
    }
}

fn is_set(src: &Source, var: &str) -> bool {
    src.get(var).is_some() || src.get(&format!("{var}_FILE")).is_some()
}

fn required_cert(src: &Source, var: &str, because: &str) -> Result<String, ConfigError> {
    src.secret(var)?.ok_or_else(|| {
        ConfigError::new(
            var,
            format!("must be set (or {var}_FILE): certificate mode is on because {because} is set"),
        )
    })
}

fn not_a_cert(var: &str, file: &str, e: &alipay::Error) -> ConfigError {
    ConfigError::new(
        var,
        format!("is not a usable certificate (expected the PEM file {file}): {e}"),
    )
}

/// Reads Alipay's verification key and the signing mode.
///
/// # Errors
/// A missing, conflicting or unusable variable, named.
pub(crate) fn read(
    src: &Source,
    app_key: &AppPrivateKey,
) -> Result<(AlipayPublicKey, SigningMode), ConfigError> {
    let Some(first) = [APP_CERT, PUBLIC_CERT, ROOT_CERT]
        .into_iter()
        .find(|v| is_set(src, v))
    else {
        return Ok((read_public_key(src, app_key)?, SigningMode::PublicKey));
    };
    if is_set(src, PUBLIC_KEY) {
        return Err(ConfigError::new(
            PUBLIC_KEY,
            format!(
                "is for public-key mode, but {first} selects certificate mode: set either \
                 ALIPAY_PUBLIC_KEY or ALIPAY_APP_CERT, ALIPAY_PUBLIC_CERT and ALIPAY_ROOT_CERT, not both"
            ),
        ));
    }
    let app_pem = required_cert(src, APP_CERT, first)?;
    let alipay_pem = required_cert(src, PUBLIC_CERT, first)?;
    let root_pem = required_cert(src, ROOT_CERT, first)?;

    let download_interval = match src.get("ALIPAY_CERT_DOWNLOAD_INTERVAL_SECS") {
        Some(v) => Duration::from_secs(parse_num(
            "ALIPAY_CERT_DOWNLOAD_INTERVAL_SECS",
            &v,
            (0u64, 86_400),
        )?),
        None => Duration::from_secs(60),
    };
    let (alipay_key, certs) =
        CertificateSettings::from_pems(app_key, app_pem, alipay_pem, root_pem, download_interval)?;
    Ok((alipay_key, SigningMode::Certificates(Box::new(certs))))
}

fn read_public_key(src: &Source, app_key: &AppPrivateKey) -> Result<AlipayPublicKey, ConfigError> {
    let pub_text = src.secret(PUBLIC_KEY)?.ok_or_else(|| {
        ConfigError::new(
            PUBLIC_KEY,
            "must be set (or ALIPAY_PUBLIC_KEY_FILE; in certificate mode ALIPAY_APP_CERT, \
             ALIPAY_PUBLIC_CERT and ALIPAY_ROOT_CERT instead)",
        )
    })?;
    let key = AlipayPublicKey::parse(&pub_text)
        .map_err(|e| ConfigError::new(PUBLIC_KEY, e.to_string()))?;
    if key.spki_der() == app_key.public_key().spki_der() {
        return Err(ConfigError::new(
            PUBLIC_KEY,
            "is the app's own public key; Alipay's public key (from the console) is needed",
        ));
    }
    Ok(key)
}

#[cfg(test)]
#[path = "signing_tests.rs"]
mod tests;
