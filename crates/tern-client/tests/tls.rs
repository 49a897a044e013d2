//! TLS against a real broker with certificates made by openssl: CA validation, host name
//! checks (with the libmosquitto CN fallback), client certificates, pinning by leaf SHA-256,
//! leaf SHA-1 and SPKI SHA-256 (also of the tutorial's X.509 v1 certificate without SAN),
//! and the plain-words errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::OnceLock;

use common::{Broker, Pki};
use tern_client::tls::{base64, fingerprints};
use tern_client::{CertError, Client, ClientError, ClientOptions, Pin, TlsOptions};

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(Pki::new)
}

/// A broker with listeners "san" (localhost/127.0.0.1), "other" (broker.local), "v1" (the
/// tutorial cert) and "mtls" (requires a client certificate).
fn broker() -> Broker {
    let p = pki();
    Broker::start_with(
        &[
            ("san", &p.listener("server.crt", "server.key", false)),
            ("other", &p.listener("other.crt", "other.key", false)),
            ("v1", &p.listener("v1.crt", "v1.key", false)),
            ("mtls", &p.listener("server.crt", "server.key", true)),
        ],
        "",
    )
}

fn ca_only() -> TlsOptions {
    TlsOptions {
        ca_files: vec![pki().path("ca.crt")],
        ..Default::default()
    }
}

async fn connect(host: &str, port: u16, tls: TlsOptions) -> Result<Client, ClientError> {
    Client::connect(
        ClientOptions::new(host, port)
            .tls(tls)
            .client_id("tls-test"),
    )
    .await
}

#[tokio::test]
async fn ca_validation_by_name_and_by_ip() {
    let b = broker();
    let port = b.port_of("san");
    connect("localhost", port, ca_only())
        .await
        .unwrap()
        .disconnect()
        .await
        .unwrap();
    connect("127.0.0.1", port, ca_only())
        .await
        .unwrap()
        .disconnect()
        .await
        .unwrap();
}

#[tokio::test]
async fn capath_directory() {
    let b = broker();
    let dir = common::TempDir::new("capath");
    std::fs::copy(pki().path("ca.crt"), dir.join("ca.pem")).unwrap();
    std::fs::write(dir.join("README"), "not a certificate").unwrap();
    let tls = TlsOptions {
        ca_path: Some(dir.path().to_owned()),
        ..Default::default()
    };
    connect("localhost", b.port_of("san"), tls).await.unwrap();
}

#[tokio::test]
async fn hostname_mismatch_is_explained() {
    let b = broker();
    let e = connect("127.0.0.1", b.port_of("other"), ca_only())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            ClientError::Certificate(CertError::HostnameMismatch { .. })
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "the broker's certificate is for 'broker.local', not '127.0.0.1': connect by a name in the certificate or reissue with: tern pki server --ip 127.0.0.1"
    );
    let e = connect("localhost", b.port_of("other"), ca_only())
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("tern pki server --host localhost"),
        "{e}"
    );
}

#[tokio::test]
async fn insecure_skips_only_the_hostname_check() {
    let b = broker();
    let mut tls = ca_only();
    tls.dangerous_skip_hostname_check = true;
    connect("127.0.0.1", b.port_of("other"), tls.clone())
        .await
        .unwrap();
    // The chain is still checked.
    tls.ca_files = vec![pki().path("rogue-ca.crt")];
    let e = connect("127.0.0.1", b.port_of("other"), tls)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Certificate(CertError::UnknownCa { .. })),
        "{e:?}"
    );
}

#[tokio::test]
async fn unknown_ca_says_pass_cafile() {
    let b = broker();
    let tls = TlsOptions {
        ca_files: vec![pki().path("rogue-ca.crt")],
        ..Default::default()
    };
    let e = connect("localhost", b.port_of("san"), tls)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("--cafile") && text.contains("CN=localhost"),
        "{text}"
    );
}

#[tokio::test]
async fn v1_certificate_with_ca_is_refused_with_advice() {
    let b = broker();
    let mut tls = ca_only();
    tls.dangerous_skip_hostname_check = true;
    let e = connect("127.0.0.1", b.port_of("v1"), tls)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Certificate(CertError::Version1)),
        "{e:?}"
    );
    assert!(e.to_string().contains("--fingerprint"), "{e}");
}

#[tokio::test]
async fn pinning_accepts_the_tutorial_v1_certificate_without_san() {
    let b = broker();
    let (sha256, sha1, spki) = fingerprints(&pki().der("v1.crt")).unwrap();
    for pin in [
        Pin::from_fingerprint(&sha256).unwrap(),
        Pin::from_fingerprint(&sha1).unwrap(),
        Pin::from_spki(&spki).unwrap(),
    ] {
        let tls = TlsOptions {
            pins: vec![pin.clone()],
            ..Default::default()
        };
        // Connected by IP, though the certificate names myhostname.com: like a device's
        // fingerprint check, pinning alone checks neither the name nor the dates.
        connect("127.0.0.1", b.port_of("v1"), tls)
            .await
            .unwrap_or_else(|e| panic!("{pin:?}: {e}"))
            .disconnect()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn pinning_with_ca_validation() {
    let b = broker();
    let (sha256, _, spki) = fingerprints(&pki().der("server.crt")).unwrap();
    let mut tls = ca_only();
    tls.pins = vec![Pin::from_fingerprint(&sha256).unwrap()];
    connect("localhost", b.port_of("san"), tls.clone())
        .await
        .unwrap();
    tls.pins = vec![Pin::from_spki(&spki).unwrap()];
    connect("localhost", b.port_of("san"), tls.clone())
        .await
        .unwrap();
    // Pin right, name wrong: the CA path still checks the name.
    let e = connect("localhost", b.port_of("other"), tls)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Certificate(CertError::PinMismatch { .. })),
        "{e:?}"
    );
}

#[tokio::test]
async fn wrong_pin_is_refused_clearly() {
    let b = broker();
    let (_, real_sha1, _) = fingerprints(&pki().der("v1.crt")).unwrap();
    for pin in [
        Pin::LeafSha256([0xAB; 32]),
        Pin::LeafSha1([0x61; 20]),
        Pin::SpkiSha256([1; 32]),
    ] {
        let tls = TlsOptions {
            pins: vec![pin],
            ..Default::default()
        };
        let e = connect("127.0.0.1", b.port_of("v1"), tls)
            .await
            .unwrap_err();
        assert!(
            matches!(e, ClientError::Certificate(CertError::PinMismatch { .. })),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(text.contains("does not match the pinned"), "{text}");
        assert!(
            text.contains(&real_sha1),
            "shows the real fingerprint: {text}"
        );
    }
    assert_eq!(base64(&[0xFF; 3]), "////");
}

#[tokio::test]
async fn client_certificate_with_sec1_key() {
    let b = broker();
    let port = b.port_of("mtls");
    let mut tls = ca_only();
    tls.client_cert = Some(pki().path("client.crt"));
    tls.client_key = Some(pki().path("client.key"));
    connect("localhost", port, tls).await.unwrap();
    // Without one, the broker refuses the handshake and the error says what to pass.
    let e = connect("localhost", port, ca_only()).await.unwrap_err();
    assert!(e.to_string().contains("--cert"), "{e}");
}

#[tokio::test]
async fn pkcs8_and_pkcs1_keys_load() {
    let d = common::TempDir::new("keys");
    let key = pki().path("client.key");
    let run = |args: &[&str]| {
        assert!(
            std::process::Command::new("openssl")
                .args(args)
                .status()
                .unwrap()
                .success()
        );
    };
    let p8 = d.join("client.p8");
    run(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        key.to_str().unwrap(),
        "-out",
        p8.to_str().unwrap(),
    ]);
    let b = broker();
    let mut tls = ca_only();
    tls.client_cert = Some(pki().path("client.crt"));
    tls.client_key = Some(p8);
    connect("localhost", b.port_of("mtls"), tls).await.unwrap();
    // An RSA key in PKCS#1 form ("BEGIN RSA PRIVATE KEY") parses too.
    let rsa = d.join("rsa.key");
    run(&[
        "genrsa",
        "-traditional",
        "-out",
        rsa.to_str().unwrap(),
        "2048",
    ]);
    let text = std::fs::read_to_string(&rsa).unwrap();
    assert!(text.contains("BEGIN RSA PRIVATE KEY"));
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    assert!(matches!(
        PrivateKeyDer::from_pem_file(&rsa).unwrap(),
        PrivateKeyDer::Pkcs1(_)
    ));
}

#[tokio::test]
async fn plain_client_on_a_tls_port_and_tls_client_on_a_plain_port() {
    let b = broker();
    let e = Client::connect(ClientOptions::new("127.0.0.1", b.port_of("san")))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("--cafile"), "{e}");
    let e = connect("localhost", b.port, ca_only()).await.unwrap_err();
    assert!(e.to_string().contains("TLS"), "{e}");
}

#[tokio::test]
async fn missing_files_are_named() {
    let tls = TlsOptions {
        ca_files: vec!["/nonexistent/ca.crt".into()],
        ..Default::default()
    };
    let e = connect("localhost", 1, tls).await.unwrap_err();
    assert!(e.to_string().contains("/nonexistent/ca.crt"), "{e}");
}
