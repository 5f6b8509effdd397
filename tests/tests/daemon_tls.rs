//! The API over TCP with TLS, as dockerd's: `--tlsverify` (here from
//! `[daemon]` in berth.toml) lets any address be listened on and serves
//! only clients with a certificate the CA signed; docker 28, 20.10 and the
//! berth CLI connect with docker's flags or DOCKER_CERT_PATH-style
//! directories, hijacked streams (run, attach) included; wrong or missing
//! client certificates, a server the client's CA did not sign, and plain
//! HTTP are refused with a reason; bad TLS files stop the daemon at start,
//! naming them. Certificates are made by the test with openssl.

use std::path::Path;
use std::process::Command;

use berth_tests::cmd::{self, Output};
use berth_tests::daemon::{clients, Daemon, IMAGE};

const PORT: u16 = 2376;

/// openssl, or the test fails with its output.
fn openssl(dir: &Path, args: &[&str]) {
    let mut c = Command::new("openssl");
    c.current_dir(dir).args(args);
    cmd::run(c, None, std::time::Duration::from_secs(60)).assert_ok();
}

/// A CA (`NAME-ca.pem`, `NAME-ca-key.pem`) in `dir`.
fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} CA"),
            "-keyout",
            &format!("{name}-ca-key.pem"),
            "-out",
            &format!("{name}-ca.pem"),
        ],
    );
}

/// A certificate `NAME-cert.pem` / `NAME-key.pem` signed by CA `by`, with
/// `ext` (subjectAltName, extendedKeyUsage).
fn cert(dir: &Path, name: &str, by: &str, ext: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}-key.pem"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-days",
            "2",
            "-CA",
            &format!("{by}-ca.pem"),
            "-CAkey",
            &format!("{by}-ca-key.pem"),
            "-CAcreateserial",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}-cert.pem"),
        ],
    );
}

/// A docker-style certificate directory: ca.pem, cert.pem, key.pem.
fn cert_dir(from: &Path, to: &Path, ca: &str, who: &str) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join(format!("{ca}-ca.pem")), to.join("ca.pem")).unwrap();
    std::fs::copy(from.join(format!("{who}-cert.pem")), to.join("cert.pem")).unwrap();
    std::fs::copy(from.join(format!("{who}-key.pem")), to.join("key.pem")).unwrap();
}

struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn make() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        ca(p, "good");
        ca(p, "rogue");
        // 172.17.0.1: the daemon's default bridge, a non-loopback address
        // of its namespace.
        cert(
            p,
            "server",
            "good",
            "subjectAltName=IP:127.0.0.1,IP:172.17.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        cert(p, "client", "good", "extendedKeyUsage=clientAuth\n");
        cert(p, "intruder", "rogue", "extendedKeyUsage=clientAuth\n");
        cert(
            p,
            "impostor",
            "rogue",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        cert_dir(p, &p.join("good"), "good", "client");
        cert_dir(p, &p.join("intruder"), "good", "intruder");
        cert_dir(p, &p.join("rogue-ca"), "rogue", "client");
        std::fs::create_dir_all(p.join("none")).unwrap();
        std::fs::copy(p.join("good-ca.pem"), p.join("none/ca.pem")).unwrap();
        Certs { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }
}

/// A client in the daemon's namespace, with `env`.
fn client(d: &Daemon, program: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = d.netns().command(program);
    let config = d.docker_config_dir();
    c.env_remove("BERTH_ROOT")
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env("DOCKER_CONFIG", &config)
        .env("HOME", &config)
        .envs(env.iter().copied())
        .args(args);
    cmd::run(c, None, std::time::Duration::from_secs(120))
}

#[test]
fn tls_with_client_certificates_as_dockerd() {
    let certs = Certs::make();
    let config = format!(
        "[daemon]\ntlsverify = true\ntlscacert = {:?}\ntlscert = {:?}\ntlskey = {:?}\n",
        certs.path("good-ca.pem"),
        certs.path("server-cert.pem"),
        certs.path("server-key.pem"),
    );
    let listen = format!("tcp://0.0.0.0:{PORT}");
    let d = Daemon::start_with_args(&config, &["-H", &listen]);
    let lo = format!("tcp://127.0.0.1:{PORT}");
    let bridge = format!("tcp://172.17.0.1:{PORT}");
    let flags = |ca: &str, who: &str| -> Vec<String> {
        vec![
            "--tlsverify".into(),
            "--tlscacert".into(),
            certs.path(&format!("{ca}-ca.pem")),
            "--tlscert".into(),
            certs.path(&format!("{who}-cert.pem")),
            "--tlskey".into(),
            certs.path(&format!("{who}-key.pem")),
        ]
    };
    let good = certs.path("good");
    for (name, c) in clients() {
        // docker's flags, on the bridge's (non-loopback) address.
        let mut args: Vec<String> = flags("good", "client");
        args.extend(["-H".into(), bridge.clone(), "version".into()]);
        args.extend(["--format".into(), "{{.Server.Os}}".into()]);
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = client(&d, c, &[], &a);
        assert_eq!(berth_tests::ok(out), "linux", "{name}");
        // A certificate directory and DOCKER_TLS_VERIFY; a hijacked stream.
        let env = [
            ("DOCKER_HOST", lo.as_str()),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", good.as_str()),
        ];
        let out = client(&d, c, &env, &["run", "--rm", IMAGE, "echo", "over tls"]);
        assert_eq!(berth_tests::ok(out), "over tls", "{name}");
        // A client certificate from another CA, none at all, plain HTTP.
        for (why, dir) in [("intruder", "intruder"), ("no certificate", "none")] {
            let env = [
                ("DOCKER_HOST", lo.as_str()),
                ("DOCKER_TLS_VERIFY", "1"),
                ("DOCKER_CERT_PATH", &certs.path(dir)),
            ];
            let out = client(&d, c, &env, &["ps"]);
            assert!(
                out.code != 0 && out.stderr.contains("tls"),
                "{name}, {why}: {out}"
            );
        }
        let out = client(&d, c, &[("DOCKER_HOST", lo.as_str())], &["ps"]);
        assert!(
            out.code != 0
                && out
                    .stderr
                    .contains("Client sent an HTTP request to an HTTPS server"),
            "{name}, plain HTTP: {out}"
        );
        // A server certificate the client's CA did not sign.
        let env = [
            ("DOCKER_HOST", lo.as_str()),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", &certs.path("rogue-ca")),
        ];
        let out = client(&d, c, &env, &["ps"]);
        assert!(
            out.code != 0 && out.stderr.contains("certificate"),
            "{name}, unknown server CA: {out}"
        );
    }

    // The berth CLI: docker's flags, and the same environment.
    let berth = d_berth();
    let mut args = flags("good", "client");
    args.extend(["-H".into(), bridge.clone(), "run".into(), "--rm".into()]);
    args.extend([IMAGE.into(), "echo".into(), "berth over tls".into()]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(
        berth_tests::ok(client(&d, &berth, &[], &a)),
        "berth over tls"
    );
    let env = [
        ("BERTH_HOST", lo.as_str()),
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", good.as_str()),
    ];
    let out = client(&d, &berth, &env, &["ps", "-a", "--format", "{{.Image}}"]);
    out.assert_ok();
    // The server is checked against the client's CA.
    let env = [
        ("BERTH_HOST", lo.as_str()),
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", &certs.path("rogue-ca")),
    ];
    let out = client(&d, &berth, &env, &["ps"]);
    assert!(
        out.code != 0
            && out
                .stderr
                .contains("TLS with the berth daemon at tcp://127.0.0.1")
            && out.stderr.contains("UnknownIssuer"),
        "{out}"
    );
    // --tls alone sends no certificate here (none in the default dir):
    // the daemon refuses it.
    let out = client(&d, &berth, &[], &["--tls", "-H", &lo, "ps"]);
    assert!(out.code != 0, "{out}");
    // Plain HTTP from berth: the daemon's answer says why.
    let out = client(&d, &berth, &[], &["-H", &lo, "ps"]);
    assert!(
        out.code != 0
            && out
                .stderr
                .contains("Client sent an HTTP request to an HTTPS server"),
        "{out}"
    );
    // Refused handshakes left the daemon answering.
    assert!(d.ping());
    assert!(d.log().contains("TLS handshake with"), "{}", d.log());
}

fn d_berth() -> String {
    berth_tests::binary::berth().to_string_lossy().into_owned()
}

#[test]
fn bad_tls_files_stop_the_daemon_at_start_naming_them() {
    let certs = Certs::make();
    let ns = berth_tests::netns::NetNs::new();
    ns.ip(&["link", "set", "lo", "up"]);
    let dir = tempfile::tempdir().unwrap();
    let missing = certs.path("missing.pem");
    let (cert, key, ca) = (
        certs.path("server-cert.pem"),
        certs.path("server-key.pem"),
        certs.path("good-ca.pem"),
    );
    let other_key = certs.path("client-key.pem");
    let not_pem = certs.path("client.ext");
    let cases: [(Vec<&str>, String); 4] = [
        (
            vec![
                "--tlsverify",
                "--tlscacert",
                &missing,
                "--tlscert",
                &cert,
                "--tlskey",
                &key,
            ],
            format!("reading the CA certificate (--tlscacert) {missing}"),
        ),
        (
            vec!["--tls", "--tlscert", &cert, "--tlskey", &other_key],
            "does not go with the certificate".to_string(),
        ),
        (
            vec![
                "--tlsverify",
                "--tlscacert",
                &ca,
                "--tlscert",
                &not_pem,
                "--tlskey",
                &key,
            ],
            "holds no PEM certificate".to_string(),
        ),
        (
            vec![],
            "refusing to listen on tcp://0.0.0.0:2376 without TLS".to_string(),
        ),
    ];
    for (flags, want) in cases {
        let mut c = ns.command(berth_tests::binary::berth());
        c.env_remove("DOCKER_TLS_VERIFY")
            .args(["daemon", "--root"])
            .arg(dir.path().join("root"))
            .args(["--config", "/nonexistent", "-H", "tcp://0.0.0.0:2376"])
            .args(&flags);
        let out = cmd::run(c, None, std::time::Duration::from_secs(60));
        assert!(
            out.code != 0 && out.stderr.contains(&want),
            "{flags:?}: {out}"
        );
    }
    assert!(!dir.path().join("root").join("containers").exists());
}
