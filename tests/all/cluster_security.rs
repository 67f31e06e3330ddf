//! Cluster mode on a NATS server set up as a real deployment has it (issue 27, point 1): TLS
//! with a private CA that also verifies clients' certificates (all made here, with rcgen), the
//! Plugboard account exactly as `docs/nats-account.conf` documents it (users with a password and
//! with an NKey, limited to the subjects a node needs), and a second account beside it.
//!
//! What must hold: two `plugboard` nodes (one authenticated by password, one by NKey seed) run
//! a cluster over that server with the documented permissions and nothing more (the server logs
//! no violation); the second account can neither see nor write Plugboard's stream; a node with
//! a wrong password, or without a client certificate, is refused at start, saying why; a node's
//! own credentials cannot delete the change log; a token-authenticated node joins a server with
//! `authorization { token }`, and `tls_required` refuses a server that offers no TLS.

use crate::support::cluster::{Node, install_filter, invoke_filter, within};
use crate::support::server::ADMIN;
use plugboard_tests::nats::NatsNode;
use reqwest::StatusCode;
use std::path::{Path, PathBuf};

/// nats-server parses an environment variable's value as config: one word, or quoted.
const PASSWORD: &str = "correct-horse-battery-staple";

/// A private CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
}

impl Pki {
    fn generate(dir: &Path) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("pem");
            path
        };
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "plugboard test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
        let ca = write("ca.pem", ca_cert.pem());
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |name: &str, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()]).expect("params");
            params.distinguished_name.push(DnType::CommonName, name);
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer).expect("sign");
            (write(&format!("{name}.pem"), cert.pem()), write(&format!("{name}-key.pem"), key.serialize_pem()))
        };
        let server = leaf("server", ExtendedKeyUsagePurpose::ServerAuth);
        let client = leaf("client", ExtendedKeyUsagePurpose::ClientAuth);
        Pki { ca, server, client }
    }

    /// The `[cluster]` lines of a node that trusts the CA and presents the client certificate.
    fn node_tls(&self) -> String {
        format!(
            "tls_ca_file = \"{}\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
            self.ca.display(),
            self.client.0.display(),
            self.client.1.display()
        )
    }

    /// A raw client of `user` over the same TLS.
    async fn client(&self, url: &str, user: &str, password: &str) -> Result<async_nats::Client, String> {
        async_nats::ConnectOptions::new()
            .user_and_password(user.into(), password.into())
            .add_root_certificates(self.ca.clone())
            .add_client_certificate(self.client.0.clone(), self.client.1.clone())
            .require_tls(true)
            .connect(url)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The last sequence of Plugboard's change log, read with a node's credentials.
async fn log_length(pki: &Pki, url: &str) -> u64 {
    let client = pki.client(url, "plugboard", PASSWORD).await.expect("plugboard client");
    let mut stream = async_nats::jetstream::new(client).get_stream("PLUGBOARD_CHANGES").await.expect("stream");
    stream.info().await.expect("info").state.last_sequence
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_runs_over_tls_with_the_documented_account_and_another_account_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let pki = Pki::generate(dir);
    let account = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/nats-account.conf");
    std::fs::copy(&account, dir.join("plugboard-account.conf")).expect("account config");
    let nkey = nkeys::KeyPair::new_user();
    let seed_file = dir.join("node-b.seed");
    std::fs::write(&seed_file, nkey.seed().expect("seed")).expect("seed file");
    let password_file = dir.join("node-a.password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("password file");
    let settings = format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: true\n  timeout: 5\n}}\n\
         include \"plugboard-account.conf\"\n\
         accounts {{\n  PLUGBOARD: $PLUGBOARD_ACCOUNT\n  OTHER: {{ jetstream: enabled, users: [{{ user: other, password: other-password }}] }}\n}}\n",
        pki.server.0.display(),
        pki.server.1.display(),
        pki.ca.display()
    );
    let public_key = nkey.public_key();
    let env = [("PLUGBOARD_NATS_PASSWORD", PASSWORD), ("PLUGBOARD_NATS_NKEY", public_key.as_str())];
    let nats = NatsNode::configured(dir, &settings, &env).await.expect("nats-server");
    let url = nats.url.clone();
    let tls = pki.node_tls();

    // Two nodes, by password and by NKey, share plugins and revocations over TLS.
    let a = Node::start_with(
        dir,
        "a",
        &format!("url = \"{url}\"\nuser = \"plugboard\"\npassword_file = \"{}\"\n{tls}", password_file.display()),
    )
    .await;
    let b =
        Node::start_with(dir, "b", &format!("url = \"{url}\"\nnkey_seed_file = \"{}\"\n{tls}", seed_file.display()))
            .await;
    install_filter(&a.api).await;
    within("the activation reaching node b", async || invoke_filter(&b.api).await == StatusCode::OK).await;
    let (_, keys) = b.api.get("/v1/keys", ADMIN).await;
    let key_id = keys["keys"][0]["key_id"].as_str().expect("key id").to_string();
    let (status, body) =
        b.api.call(reqwest::Method::POST, &format!("/v1/keys/{key_id}/revoke"), Some(ADMIN), None).await;
    assert!(status.is_success(), "{status} {body}");
    within("the revocation reaching node a", async || invoke_filter(&a.api).await != StatusCode::OK).await;
    let server_log = || std::fs::read_to_string(dir.join("nats.log")).unwrap_or_default();
    assert!(
        !server_log().contains("Violation"),
        "a node needed more than the documented permissions:\n{}",
        server_log()
    );

    // The other account sees no Plugboard stream, and what it publishes on Plugboard's subjects
    // never reaches the log.
    // Nodes publish the usage they counted on their tick (250 ms): measure once that is done.
    let mut before = log_length(&pki, &url).await;
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let now = log_length(&pki, &url).await;
        if now == before {
            break;
        }
        before = now;
    }
    let other = pki.client(&url, "other", "other-password").await.expect("the other account connects");
    let other_js = async_nats::jetstream::new(other.clone());
    assert!(other_js.get_stream("PLUGBOARD_CHANGES").await.is_err(), "the other account sees Plugboard's stream");
    let published = async {
        other_js
            .publish("plugboard.changes.admin", "junk".into())
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())
    };
    assert!(published.await.is_err(), "the other account's publish was stored");
    other.publish("plugboard.changes.work", "junk".into()).await.expect("core publish");
    other.flush().await.expect("flush");
    assert_eq!(log_length(&pki, &url).await, before, "the other account wrote into Plugboard's log");

    // A node's own credentials cannot delete or purge the log.
    let node_js = async_nats::jetstream::new(pki.client(&url, "plugboard", PASSWORD).await.expect("client"));
    assert!(node_js.delete_stream("PLUGBOARD_CHANGES").await.is_err(), "a node's user deleted the log");
    assert!(server_log().contains("Violation"), "the refused delete is logged by the server");
    assert_eq!(log_length(&pki, &url).await, before, "the log changed");

    // Wrong password, no client certificate: refused at start, saying why.
    let wrong = dir.join("wrong.password");
    std::fs::write(&wrong, "not the password").expect("file");
    let refused = Node::refused(
        dir,
        "wrong-password",
        &format!("url = \"{url}\"\nuser = \"plugboard\"\npassword_file = \"{}\"\n{tls}", wrong.display()),
    )
    .await;
    assert!(refused.to_lowercase().contains("authorization"), "{refused}");
    let refused = Node::refused(
        dir,
        "no-client-cert",
        &format!(
            "url = \"{url}\"\nuser = \"plugboard\"\npassword_file = \"{}\"\ntls_ca_file = \"{}\"\n",
            password_file.display(),
            pki.ca.display()
        ),
    )
    .await;
    assert!(refused.contains("cannot connect"), "{refused}");
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_authenticates_and_tls_required_refuses_a_plain_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let token = "s3cr3t-token-for-the-test-server-0123456789";
    let nats = NatsNode::configured(dir, &format!("authorization {{ token: \"{token}\" }}"), &[]).await.expect("nats");
    let url = nats.url.clone();
    let token_file = dir.join("nats.token");
    std::fs::write(&token_file, token).expect("token file");
    let node =
        Node::start_with(dir, "token", &format!("url = \"{url}\"\ntoken_file = \"{}\"\n", token_file.display())).await;
    let (status, body) = node.api.get("/v1/plugins", ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let refused = Node::refused(dir, "wrong-token", &format!("url = \"{url}\"\ntoken = \"wrong\"\n")).await;
    assert!(refused.to_lowercase().contains("authorization"), "{refused}");
    let refused = Node::refused(
        dir,
        "plain",
        &format!("url = \"{url}\"\ntoken_file = \"{}\"\ntls_required = true\n", token_file.display()),
    )
    .await;
    assert!(refused.contains("cannot connect"), "{refused}");
    // Two ways to authenticate at once is a config error, not a guess.
    let refused = Node::refused(
        dir,
        "two-ways",
        &format!("url = \"{url}\"\ntoken = \"{token}\"\nuser = \"u\"\npassword = \"p\"\n"),
    )
    .await;
    assert!(refused.contains("set one of"), "{refused}");
    drop(node);
}
