//! TLS on the gRPC listener: a real server with certificates made for the test, clients that
//! trust its CA (a tonic channel and the `lotline` CLI), mutual TLS naming the org, plaintext
//! refused, and certificates reloaded without dropping open connections.

mod common;

use std::path::Path;
use std::time::Duration;

use lotline_proto::v1;
use lotline_proto::v1::access_service_client::AccessServiceClient;
use lotline_server::tls::TlsFiles;
use lotline_server::{AuthSettings, ServeConfig};
use lotline_testkit::{TestServer, tls_channel};

use common::{ca, leaf, lotline, stderr, stdout};

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates_and_reloading() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).expect("dir");
    let first = ca("lotline test CA 1");
    let (server_cert, server_key) = leaf(&first, &["127.0.0.1", "localhost"], "lotline", None);
    let ca_file = write(&certs, "ca.pem", &first.pem);
    let cert_file = write(&certs, "server.pem", &server_cert);
    let key_file = write(&certs, "server.key", &server_key);
    let (client_cert, client_key) = leaf(&first, &[], "coop-a", Some("member"));
    let client_cert_file = write(&certs, "client.pem", &client_cert);
    let client_key_file = write(&certs, "client.key", &client_key);

    let mut config = ServeConfig::new(dir.path().join("data"));
    config.tls = Some(TlsFiles {
        cert: cert_file.clone().into(),
        key: key_file.clone().into(),
        client_ca: Some(ca_file.clone().into()),
    });
    config.auth = Some(AuthSettings::default());
    let server = TestServer::start_tls(config, first.pem.as_bytes()).await;
    let url = server.url();

    // Mutual TLS: the certificate's CN is the org, its OU the role.
    let channel = tls_channel(
        &url,
        first.pem.as_bytes(),
        Some((client_cert.as_bytes(), client_key.as_bytes())),
    )
    .await
    .expect("mTLS connection");
    let mut access = AccessServiceClient::new(channel.clone());
    let me = access
        .who_am_i(v1::WhoAmIRequest {})
        .await
        .expect("whoami")
        .into_inner();
    assert_eq!(
        (me.org.as_str(), me.credential.as_str()),
        ("coop-a", "certificate")
    );
    assert_eq!(me.roles, vec!["member".to_string()]);

    // TLS without a credential is still refused by --auth.
    let anonymous = tls_channel(&url, first.pem.as_bytes(), None)
        .await
        .expect("TLS connection");
    let status = AccessServiceClient::new(anonymous)
        .who_am_i(v1::WhoAmIRequest {})
        .await
        .expect_err("no credential");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    // The CLI, over https with --ca and a client certificate.
    let out = lotline(&[
        "whoami",
        "--server",
        &url,
        "--ca",
        &ca_file,
        "--client-cert",
        &client_cert_file,
        "--client-key",
        &client_key_file,
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let me: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(me["org"], "coop-a");

    // Plaintext to the TLS port fails; so does a client that does not trust the CA.
    let plain = url.replace("https://", "http://");
    let out = lotline(&["whoami", "--server", &plain]);
    assert!(!out.status.success(), "plaintext was answered");
    let out = lotline(&["whoami", "--server", &url]);
    assert!(
        !out.status.success(),
        "an untrusted certificate was accepted"
    );

    // Renew with a certificate from another CA: new connections get it once the files
    // change, and the connection opened before carries on.
    let second = ca("lotline test CA 2");
    let (renewed_cert, renewed_key) = leaf(&second, &["127.0.0.1"], "lotline", None);
    std::fs::write(&key_file, renewed_key).expect("write key");
    std::fs::write(&cert_file, renewed_cert).expect("write cert");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if tls_channel(&url, second.pem.as_bytes(), None).await.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the renewed certificate was not served within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        tls_channel(&url, first.pem.as_bytes(), None).await.is_err(),
        "the old certificate is still served to new connections"
    );
    let me = access
        .who_am_i(v1::WhoAmIRequest {})
        .await
        .expect("the connection opened before the reload still works")
        .into_inner();
    assert_eq!(me.org, "coop-a");
    server.stop().await.expect("stop");
}

#[test]
fn serving_in_clear_beyond_loopback_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().display().to_string();
    // Refused before anything is bound.
    let out = lotline(&["serve", "--listen", "0.0.0.0:0", "--data-dir", &data]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("--tls-cert"), "{}", stderr(&out));
    // A key without a certificate is a usage error too.
    let out = lotline(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &data,
        "--tls-key",
        "missing.key",
    ]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_binding_speaks_tls_with_the_same_certificates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let authority = ca("lotline test CA");
    let (server_cert, server_key) = leaf(&authority, &["127.0.0.1"], "lotline", None);
    let (client_cert, client_key) = leaf(&authority, &[], "brand-a", Some("auditor"));
    let mut config = ServeConfig::new(dir.path().join("data"));
    config.tls = Some(TlsFiles {
        cert: write(dir.path(), "server.pem", &server_cert).into(),
        key: write(dir.path(), "server.key", &server_key).into(),
        client_ca: Some(write(dir.path(), "ca.pem", &authority.pem).into()),
    });
    config.auth = Some(AuthSettings::default());
    config.http = Some("127.0.0.1:0".parse().unwrap());
    let server = TestServer::start_tls(config, authority.pem.as_bytes()).await;
    let https = server.http_url().replace("http://", "https://");
    let trusting = || {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(authority.pem.as_bytes()).unwrap())
    };

    // A client certificate is the caller: its CN the org, its OU the role.
    let identity = reqwest::Identity::from_pem(format!("{client_cert}{client_key}").as_bytes())
        .expect("client identity");
    let mutual = trusting().identity(identity).build().unwrap();
    let answer = mutual
        .get(format!("{https}/events"))
        .send()
        .await
        .expect("an HTTPS answer");
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(
        answer.headers()["lotline-view"],
        "full",
        "an unscoped auditor"
    );

    // TLS without a credential is refused by --auth, as over gRPC.
    let anonymous = trusting().build().unwrap();
    let refused = anonymous
        .get(format!("{https}/events"))
        .send()
        .await
        .expect("an HTTPS answer");
    assert_eq!(refused.status().as_u16(), 401);

    // Plaintext to the TLS port gets no answer; neither does a client that does not trust the CA.
    let plain = server.http_url();
    assert!(reqwest::get(format!("{plain}/events")).await.is_err());
    assert!(
        reqwest::Client::new()
            .get(format!("{https}/events"))
            .send()
            .await
            .is_err()
    );
    server.stop().await.expect("stop");
}
