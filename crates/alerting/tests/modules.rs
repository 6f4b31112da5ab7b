//! Each module against a real peer on loopback: a real SMTP server (Python's aiosmtpd),
//! syslog receivers on UDP, TCP and a Unix socket, a script's environment and timeout,
//! and the Pushbullet and Twilio APIs at a local receiver.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use prophasis_alerting::modules::{self, SendError};
use prophasis_alerting::{Notification, NotificationKind};
use prophasis_model::transition::Entity;
use prophasis_model::Health;
use serde_json::{json, Value};

fn notification() -> Notification {
    let mut a = alert("disk full", "webhook", json!({}));
    a.id = 7;
    let t = transition(
        Entity::Host(3),
        Health::Ok,
        Health::Critical,
        1_700_000_000_000,
    );
    Notification::new(NotificationKind::Transition, &a, &t, "db1 <primary>", BASE)
}

const SMTP_SERVER: &str = r#"
import sys, json, email, email.policy, ssl
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
port, out, mode, cert, key, user, password = sys.argv[1:8]
logins = []
def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login.decode() == user and auth_data.password.decode() == password)
    if ok:
        logins.append(user)
    return AuthResult(success=ok)
class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        record = {
            "from": envelope.mail_from,
            "rcpt": envelope.rcpt_tos,
            "subject": str(msg["subject"]),
            "plain": msg.get_body(("plain",)).get_content(),
            "html": msg.get_body(("html",)).get_content(),
            "tls": session.ssl is not None,
            "login": logins[-1] if logins else None,
        }
        with open(out, "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"
kw = {}
if mode != "plain":
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    if mode == "starttls":
        # aiosmtpd's STARTTLS stalls with TLS 1.3 clients that wait for the server after
        # the handshake (rustls does); TLS 1.2 still tests the upgrade and the login.
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        kw = dict(tls_context=ctx, require_starttls=True)
    else:
        # Implicit TLS is invisible to aiosmtpd's session: allow AUTH on it.
        kw = dict(ssl_context=ctx, auth_require_tls=False)
    kw.update(authenticator=authenticator, auth_required=True)
c = Controller(Handler(), hostname="127.0.0.1", port=int(port), **kw)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#;

/// A real SMTP server (aiosmtpd) writing what it receives to a file, one JSON per mail.
struct SmtpServer {
    child: Child,
    port: u16,
    mails: std::path::PathBuf,
    /// PEM of the CA that signed the server's certificate (TLS modes).
    ca: String,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    /// `mode`: `plain`, `starttls` or `tls`; the TLS modes require the login `alerts`
    /// with password `s3cret`.
    fn start(mode: &str) -> SmtpServer {
        let probe = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .output();
        match probe {
            Ok(o) if o.status.success() => {}
            _ => panic!(
                "the email tests need a real SMTP server from Python's aiosmtpd, which is not installed: \
                 run `python3 -m pip install aiosmtpd` (and make sure python3 is on PATH)"
            ),
        }
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("smtpd.py");
        std::fs::write(&script, SMTP_SERVER).unwrap();
        let (ca, cert, key) = certificates();
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
        let mails = dir.path().join("mails.jsonl");
        let port = free_port();
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(&mails)
            .args([
                mode,
                cert_path.to_str().unwrap(),
                key_path.to_str().unwrap(),
                "alerts",
                "s3cret",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "aiosmtpd did not start");
        SmtpServer {
            child,
            port,
            mails,
            ca,
            _dir: dir,
        }
    }

    fn mails(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.mails)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// A private CA and a certificate it signed for 127.0.0.1: (CA PEM, cert PEM, key PEM).
fn certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn email_reaches_a_real_smtp_server_with_recipients_subject_and_both_bodies() {
    let smtp = SmtpServer::start("plain");
    let options = json!({
        "host": "127.0.0.1",
        "port": smtp.port,
        "security": "none",
        "from": "Prophasis <prophasis@example.net>",
        "to": ["ops@example.net", "oncall@example.org"],
    });
    modules::validate("email", &options).unwrap();
    modules::send("email", &notification(), &options)
        .await
        .unwrap();
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m["from"], "prophasis@example.net");
    assert_eq!(m["rcpt"], json!(["ops@example.net", "oncall@example.org"]));
    assert_eq!(
        m["subject"],
        "disk full: host db1 <primary> ok -> critical (cpu)"
    );
    let plain = m["plain"].as_str().unwrap();
    for want in [
        "Alert: disk full",
        "host: db1 <primary>",
        "Health: ok -> critical",
        "Plugin: cpu",
        "Value: 97.5",
        "Message: load is high",
        "Time: 2023-11-14T22:13:20.000Z",
        "Link: http://prophasis.test/hosts/3",
    ] {
        assert!(plain.contains(want), "{want:?} missing from {plain}");
    }
    let html = m["html"].as_str().unwrap();
    assert!(html.contains("db1 &lt;primary&gt;"), "{html}");
    assert!(
        html.contains("href=\"http://prophasis.test/hosts/3\""),
        "{html}"
    );
}

#[tokio::test]
async fn email_over_starttls_and_implicit_tls_with_a_login() {
    for mode in ["tls", "starttls"] {
        let smtp = SmtpServer::start(mode);
        let mut options = json!({
            "host": "127.0.0.1",
            "port": smtp.port,
            "security": mode,
            "username": "alerts",
            "password": "s3cret",
            "ca_certificate": smtp.ca,
            "from": "prophasis@example.net",
            "to": ["ops@example.net"],
            "timeout_seconds": 10,
        });
        modules::validate("email", &options).unwrap();
        modules::send("email", &notification(), &options)
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        let mails = smtp.mails();
        assert_eq!(mails.len(), 1, "{mode}");
        assert_eq!(mails[0]["rcpt"], json!(["ops@example.net"]));
        assert_eq!(mails[0]["login"], "alerts", "{mode}");
        if mode == "starttls" {
            // aiosmtpd records STARTTLS in the session (implicit TLS is below its view).
            assert_eq!(mails[0]["tls"], true, "{mode}");
        }

        // A wrong password is the server's refusal, reported, not a crash.
        options["password"] = json!("wrong");
        options["timeout_seconds"] = json!(3);
        let e = modules::send("email", &notification(), &options)
            .await
            .unwrap_err();
        assert!(
            matches!(e, SendError::Failed(_) | SendError::Timeout(_)),
            "{mode}: {e}"
        );
        // Without the private CA the certificate is not trusted.
        options["password"] = json!("s3cret");
        options.as_object_mut().unwrap().remove("ca_certificate");
        let e = modules::send("email", &notification(), &options)
            .await
            .unwrap_err();
        assert!(
            e.to_string().to_lowercase().contains("certificate"),
            "{mode}: {e}"
        );
        assert_eq!(smtp.mails().len(), 1);
    }
    let e = modules::validate(
        "email",
        &json!({"host": "h", "from": "a@b.c", "to": ["d@e.f"], "ca_certificate": "not pem"}),
    )
    .unwrap_err();
    assert_eq!(e.field, "options.ca_certificate");
}

#[tokio::test]
async fn email_to_an_unreachable_server_is_an_error_not_a_crash() {
    let options = json!({
        "host": "127.0.0.1", "port": free_port(), "security": "none",
        "from": "p@example.net", "to": ["a@example.net"], "timeout_seconds": 5,
    });
    let e = modules::send("email", &notification(), &options)
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Failed(_)), "{e}");
    assert!(e.to_string().contains("127.0.0.1"), "{e}");
}

/// `<PRI>1 TIMESTAMP HOSTNAME APP PROCID MSGID [SD] MSG`
fn check_rfc5424(line: &str) {
    let (pri, rest) = line.split_once('>').unwrap();
    // daemon (3) * 8 + crit (2)
    assert_eq!(pri, "<26", "{line}");
    let parts: Vec<&str> = rest.splitn(7, ' ').collect();
    assert_eq!(parts[0], "1", "version: {line}");
    assert_eq!(parts[1], "2023-11-14T22:13:20.000Z");
    assert!(!parts[2].is_empty());
    assert_eq!(parts[3], "prophasis");
    assert!(parts[4].parse::<u32>().is_ok(), "procid: {line}");
    assert_eq!(parts[5], "alert");
    let sd_and_msg = parts[6];
    assert!(
        sd_and_msg.starts_with("[prophasis@32473 alert=\"disk full\" entity=\"db1 <primary>\""),
        "{line}"
    );
    assert!(sd_and_msg.contains("new=\"critical\""), "{line}");
    assert!(sd_and_msg.contains("] disk full: host db1 <primary> ok -> critical (cpu): load is high (value 97.5) http://prophasis.test/hosts/3"), "{line}");
}

#[tokio::test]
async fn syslog_over_udp_tcp_and_a_local_socket_in_rfc5424() {
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let opts = json!({"transport": "udp", "address": udp.local_addr().unwrap().to_string()});
    modules::send("syslog", &notification(), &opts)
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), udp.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    check_rfc5424(std::str::from_utf8(&buf[..n]).unwrap());

    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let opts = json!({"transport": "tcp", "address": tcp.local_addr().unwrap().to_string()});
    let recv = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut s, _) = tcp.accept().await.unwrap();
        let mut all = String::new();
        s.read_to_string(&mut all).await.unwrap();
        all
    });
    modules::send("syslog", &notification(), &opts)
        .await
        .unwrap();
    let framed = recv.await.unwrap();
    let (len, msg) = framed.split_once(' ').unwrap();
    assert_eq!(len.parse::<usize>().unwrap(), msg.len(), "octet counting");
    check_rfc5424(msg);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let local = tokio::net::UnixDatagram::bind(&path).unwrap();
    let opts = json!({"transport": "local", "address": path.to_str().unwrap()});
    modules::send("syslog", &notification(), &opts)
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), local.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    check_rfc5424(std::str::from_utf8(&buf[..n]).unwrap());

    let gone =
        json!({"transport": "local", "address": dir.path().join("none.sock").to_str().unwrap()});
    assert!(modules::send("syslog", &notification(), &gone)
        .await
        .is_err());
}

#[tokio::test]
async fn script_sees_the_alert_in_its_environment_and_is_killed_on_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env.txt");
    let script = dir.path().join("notify.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nenv | grep '^PROPHASIS_' | sort > \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let opts = json!({"command": script.to_str().unwrap(), "args": [out.to_str().unwrap()]});
    modules::send("script", &notification(), &opts)
        .await
        .unwrap();
    let env = std::fs::read_to_string(&out).unwrap();
    for want in [
        "PROPHASIS_ALERT_NAME=disk full",
        "PROPHASIS_ALERT_ID=7",
        "PROPHASIS_ENTITY_TYPE=host",
        "PROPHASIS_ENTITY_ID=3",
        "PROPHASIS_ENTITY_NAME=db1 <primary>",
        "PROPHASIS_PLUGIN=cpu",
        "PROPHASIS_OLD_HEALTH=ok",
        "PROPHASIS_NEW_HEALTH=critical",
        "PROPHASIS_VALUE=97.5",
        "PROPHASIS_MESSAGE=load is high",
        "PROPHASIS_TIME=2023-11-14T22:13:20.000Z",
        "PROPHASIS_AT=1700000000000",
        "PROPHASIS_LINK=http://prophasis.test/hosts/3",
        "PROPHASIS_KIND=transition",
    ] {
        assert!(
            env.lines().any(|l| l == want),
            "{want:?} missing from\n{env}"
        );
    }
    assert!(env.contains("PROPHASIS_JSON={"), "{env}");

    let slow = dir.path().join("slow.sh");
    std::fs::write(&slow, "#!/bin/sh\nsleep 30\n").unwrap();
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let started = Instant::now();
    let e = modules::send(
        "script",
        &notification(),
        &json!({"command": slow.to_str().unwrap(), "timeout_seconds": 1}),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, SendError::Timeout(_)), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let failing = dir.path().join("fail.sh");
    std::fs::write(
        &failing,
        "#!/bin/sh\necho 'no route to pager' >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &failing,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let e = modules::send(
        "script",
        &notification(),
        &json!({"command": failing.to_str().unwrap()}),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("no route to pager"), "{e}");
    let e = modules::validate("script", &json!({"command": "relative/path"})).unwrap_err();
    assert_eq!(e.field, "options.command");
}

#[tokio::test]
async fn pushbullet_and_twilio_call_their_apis() {
    let rx = Receiver::start(vec![200]).await;
    let opts = json!({"access_token": "o.token", "base_url": rx.url});
    modules::send("pushbullet", &notification(), &opts)
        .await
        .unwrap();
    let req = rx.get(0);
    assert_eq!(req.path, "/v2/pushes");
    assert_eq!(req.header("access-token"), Some("o.token"));
    let body: Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(body["type"], "note");
    assert_eq!(
        body["title"],
        "disk full: host db1 <primary> ok -> critical (cpu)"
    );

    let opts = json!({
        "account_sid": "AC123", "auth_token": "tok", "from": "+15550001111",
        "to": ["+15552223333"], "base_url": rx.url,
    });
    modules::send("twilio", &notification(), &opts)
        .await
        .unwrap();
    let req = rx.get(1);
    assert_eq!(req.path, "/2010-04-01/Accounts/AC123/Messages.json");
    assert!(req.header("authorization").unwrap().starts_with("Basic "));
    assert!(req.body.contains("To=%2B15552223333"), "{}", req.body);
    assert!(req.body.contains("Body=disk+full"), "{}", req.body);

    let mut call = opts.clone();
    call["mode"] = json!("call");
    modules::send("twilio", &notification(), &call)
        .await
        .unwrap();
    let req = rx.get(2);
    assert_eq!(req.path, "/2010-04-01/Accounts/AC123/Calls.json");
    assert!(req.body.contains("Twiml="), "{}", req.body);

    let e = modules::validate(
        "twilio",
        &json!({"account_sid": "AC1", "auth_token": "t", "from": "555", "to": ["+1555"]}),
    )
    .unwrap_err();
    assert_eq!(e.field, "options.from");
}
