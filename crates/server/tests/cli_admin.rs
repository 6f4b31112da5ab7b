//! The admin commands of the real `prophasis` binary against real databases: `user`,
//! `migrate`, `plugin verify` (with keys and signatures made by the real gpg) and
//! `export`/`import` (round trip, idempotence, dry run, every error reported, secrets).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use prophasis::actions::{Actions, Actor, AlertSettingsBody};
use prophasis_model::*;
use prophasis_store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_prophasis");

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prophasis runs");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(args: &[&str], stdin: Option<&str>) -> String {
    let o = run(args, stdin);
    assert!(
        o.status.success(),
        "{args:?} failed:\n{}\n{}",
        out(&o),
        err(&o)
    );
    out(&o)
}

fn fails(args: &[&str], stdin: Option<&str>) -> (String, String) {
    let o = run(args, stdin);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{args:?} should fail:\n{}\n{}",
        out(&o),
        err(&o)
    );
    (out(&o), err(&o))
}

fn data_dir() -> tempfile::TempDir {
    let d = tempfile::Builder::new().prefix("cli").tempdir().unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn users_are_managed_from_the_command_line() {
    let dir = data_dir();
    let d = s(dir.path());
    let o = ok(
        &[
            "user",
            "add",
            "alice",
            "--role",
            "admin",
            "--password-stdin",
            "--data",
            d,
        ],
        Some("correct horse battery\n"),
    );
    assert_eq!(o.trim(), "user alice added (admin)");
    ok(
        &["user", "add", "bob", "--password-stdin", "--data", d],
        Some("another long password\n"),
    );
    let list = ok(&["user", "list", "--data", d], None);
    assert!(list.contains("alice  admin"), "{list}");
    assert!(list.contains("bob    viewer"), "{list}");

    // The rules come from the actions: password length, last admin.
    let (_, e) = fails(
        &["user", "add", "carol", "--password-stdin", "--data", d],
        Some("short\n"),
    );
    assert!(
        e.contains("password: must be at least 10 characters"),
        "{e}"
    );
    let (_, e) = fails(&["user", "delete", "alice", "--data", d], None);
    assert!(e.contains("only admin"), "{e}");
    let (_, e) = fails(
        &["user", "passwd", "nobody", "--password-stdin", "--data", d],
        Some("whatever long one\n"),
    );
    assert!(e.contains("no user named \"nobody\""), "{e}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let hash_of_bob = || {
        rt.block_on(async {
            let store = Store::open(&format!("sqlite://{d}/prophasis.db"))
                .await
                .unwrap();
            let h = store
                .list_users()
                .await
                .unwrap()
                .into_iter()
                .find(|u| u.name == "bob")
                .unwrap()
                .password_hash;
            store.close().await;
            h
        })
    };
    let before = hash_of_bob();
    ok(
        &["user", "passwd", "bob", "--password-stdin", "--data", d],
        Some("a new long password\n"),
    );
    let after = hash_of_bob();
    assert_ne!(before, after, "passwd must store a new hash");
    assert!(after.starts_with("$argon2"), "{after}");
    assert_eq!(
        ok(&["user", "delete", "bob", "--data", d], None).trim(),
        "user bob deleted"
    );
    assert!(!ok(&["user", "list", "--data", d], None).contains("bob"));

    // No data folder: a clear message instead of a new empty database somewhere.
    let (_, e) = fails(&["user", "list", "--data", "/nonexistent/prophasis"], None);
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn migrate_reports_versions_and_refuses_a_newer_database() {
    let dir = data_dir();
    let d = s(dir.path());
    let supported = Store::supported_schema_version("sqlite://x.db");
    let first = ok(&["migrate", "--data", d], None);
    assert!(
        first.contains("schema version before: none (new database)"),
        "{first}"
    );
    assert!(
        first.contains(&format!("schema version after: {supported}")),
        "{first}"
    );
    let again = ok(&["migrate", "--data", d], None);
    assert!(
        again.contains(&format!("schema version before: {supported}")),
        "{again}"
    );
    assert!(again.contains("already up to date"), "{again}");

    // Through a configuration file too.
    let config = dir.path().join("prophasis.toml");
    std::fs::write(&config, format!("data_dir = {:?}\n", d)).unwrap();
    ok(&["migrate", "--config", s(&config)], None);

    let db = dir.path().join("prophasis.db");
    let o = Command::new("sqlite3")
        .arg(&db)
        .arg("UPDATE prophasis_meta SET value = '999' WHERE key = 'schema_version'")
        .output()
        .expect("this test needs the sqlite3 command: apt-get install sqlite3");
    assert!(o.status.success());
    let (_, e) = fails(&["migrate", "--data", d], None);
    assert!(e.contains("has Prophasis schema version 999"), "{e}");
    assert!(e.contains("Upgrade Prophasis"), "{e}");
}

struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        Gpg {
            home: tempfile::Builder::new().prefix("gpg").tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Vec<u8> {
        let o = Command::new("gpg")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run gpg ({e}): this test needs GnuPG, run `apt-get install gnupg`")
            });
        assert!(
            o.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    }

    fn key(&self, dir: &Path, email: &str, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(
            &p,
            self.run(&["--armor", "--export", &format!("<{email}>")]),
        )
        .unwrap();
        p
    }

    fn sign(&self, email: &str, data: &Path, out: &Path, extra: &[&str]) {
        let who = format!("<{email}>");
        let mut args = vec!["--local-user", who.as_str()];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--output", s(out), "--detach-sign", s(data)]);
        self.run(&args);
    }
}

#[test]
fn plugin_verify_applies_the_agent_policy() {
    let dir = data_dir();
    let p = dir.path();
    let pkg = p.join("heartbeat.tar.gz");
    ok(
        &[
            "plugin",
            "pack",
            &format!("{}/../../plugins/heartbeat", env!("CARGO_MANIFEST_DIR")),
            "-o",
            s(&pkg),
        ],
        None,
    );
    let g = Gpg::new();
    g.run(&[
        "--quick-gen-key",
        "Ed <ed@example.com>",
        "ed25519",
        "sign",
        "0",
    ]);
    g.run(&[
        "--quick-gen-key",
        "Rsa <rsa@example.com>",
        "rsa2048",
        "sign",
        "0",
    ]);
    g.run(&[
        "--quick-gen-key",
        "Other <other@example.com>",
        "ed25519",
        "sign",
        "0",
    ]);
    g.run(&[
        "--faked-system-time",
        "20200101T000000",
        "--quick-gen-key",
        "Expired <expired@example.com>",
        "ed25519",
        "sign",
        "1d",
    ]);
    let ed = g.key(p, "ed@example.com", "ed.asc");
    let rsa = g.key(p, "rsa@example.com", "rsa.asc");
    let other = g.key(p, "other@example.com", "other.asc");
    let expired = g.key(p, "expired@example.com", "expired.asc");

    let good = p.join("good.sig");
    g.sign("ed@example.com", &pkg, &good, &[]);
    let o = ok(&["plugin", "verify", s(&pkg), s(&good), s(&ed)], None);
    assert!(o.starts_with("good signature:"), "{o}");
    assert!(o.contains("Ed <ed@example.com>"), "{o}");

    let armored = p.join("good.asc");
    g.sign("ed@example.com", &pkg, &armored, &["--armor"]);
    ok(&["plugin", "verify", s(&pkg), s(&armored), s(&ed)], None);

    let (o, _) = fails(&["plugin", "verify", s(&pkg), s(&good), s(&other)], None);
    assert!(
        o.contains("BAD signature") && o.contains("not among"),
        "{o}"
    );

    let sha1 = p.join("sha1.sig");
    g.sign("rsa@example.com", &pkg, &sha1, &["--digest-algo", "SHA1"]);
    let (o, _) = fails(&["plugin", "verify", s(&pkg), s(&sha1), s(&rsa)], None);
    assert!(o.contains("weak hash SHA1"), "{o}");

    let old = p.join("expired.sig");
    g.sign(
        "expired@example.com",
        &pkg,
        &old,
        &["--faked-system-time", "20200101T120000"],
    );
    let (o, _) = fails(&["plugin", "verify", s(&pkg), s(&old), s(&expired)], None);
    assert!(o.contains("expired"), "{o}");

    // A changed package no longer matches its signature.
    let tampered = p.join("tampered.tar.gz");
    let mut bytes = std::fs::read(&pkg).unwrap();
    bytes.push(0);
    std::fs::write(&tampered, bytes).unwrap();
    let (o, _) = fails(&["plugin", "verify", s(&tampered), s(&good), s(&ed)], None);
    assert!(o.contains("BAD signature"), "{o}");

    // A revoked key.
    g.run(&[
        "--quick-gen-key",
        "Revoked <revoked@example.com>",
        "ed25519",
        "sign",
        "0",
    ]);
    let rsig = p.join("revoked.sig");
    g.sign("revoked@example.com", &pkg, &rsig, &[]);
    let fpr = String::from_utf8(g.run(&["--with-colons", "--list-keys", "<revoked@example.com>"]))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("fpr:"))
        .map(|l| l.split(':').nth(9).unwrap().to_string())
        .unwrap();
    let rev =
        std::fs::read_to_string(g.home.path().join(format!("openpgp-revocs.d/{fpr}.rev"))).unwrap();
    let fixed = g.home.path().join("rev.asc");
    std::fs::write(&fixed, rev.replace(":-----BEGIN", "-----BEGIN")).unwrap();
    g.run(&["--import", s(&fixed)]);
    let revoked = g.key(p, "revoked@example.com", "revoked.asc");
    let (o, _) = fails(&["plugin", "verify", s(&pkg), s(&rsig), s(&revoked)], None);
    assert!(o.contains("revoked"), "{o}");
}

/// A configuration with one of everything, written through the actions.
async fn populate(store: Arc<Store>, packages: &Path) {
    let a = Actions::offline(store);
    let me = Actor::command_line();
    let pkg = packages.join("heartbeat.tar.gz");
    let o = Command::new(BIN)
        .args([
            "plugin",
            "pack",
            &format!("{}/../../plugins/heartbeat", env!("CARGO_MANIFEST_DIR")),
            "-o",
            s(&pkg),
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let plugin = a
        .install_plugin(&me, std::fs::read(&pkg).unwrap(), None)
        .await
        .unwrap();
    let mut hosts = Vec::new();
    for i in 0..3 {
        let h = a
            .create_host(
                &me,
                &Host {
                    id: 0,
                    name: format!("web{i}"),
                    address: format!("10.0.0.{i}"),
                    port: 4048,
                    description: String::new(),
                    auth_key: format!("key-of-web{i}-0123456789"),
                    tls_fingerprint: None,
                    enabled: true,
                },
            )
            .await
            .unwrap();
        hosts.push(h.id);
    }
    let inner = a
        .create_host_group(
            &me,
            &HostGroup {
                id: 0,
                name: "inner".into(),
                description: "d".into(),
                member_hosts: vec![hosts[0]],
                member_groups: vec![],
            },
        )
        .await
        .unwrap();
    // "all" sorts before "inner": an import must create it naming a group made later.
    let outer = a
        .create_host_group(
            &me,
            &HostGroup {
                id: 0,
                name: "all".into(),
                description: String::new(),
                member_hosts: vec![hosts[1]],
                member_groups: vec![inner.id],
            },
        )
        .await
        .unwrap();
    let mut args = std::collections::BTreeMap::new();
    let mut m = serde_json::Map::new();
    m.insert("threshold".into(), serde_json::json!(5));
    args.insert(plugin.id.clone(), m);
    let check = a
        .create_check(
            &me,
            &Check {
                id: 0,
                name: "basic".into(),
                description: String::new(),
                hosts: vec![hosts[2]],
                host_groups: vec![outer.id],
                plugins: vec![plugin.id.clone()],
                plugin_args: args,
            },
        )
        .await
        .unwrap();
    a.create_schedule(
        &me,
        &Schedule {
            id: 0,
            name: "every minute".into(),
            description: String::new(),
            checks: vec![check.id],
            intervals: vec![Interval {
                id: 0,
                start: 1_700_000_000_000,
                period_seconds: 60,
            }],
        },
    )
    .await
    .unwrap();
    let base = a
        .create_service(
            &me,
            &Service {
                id: 0,
                name: "zeta base".into(),
                description: String::new(),
                dependencies: vec![Member::Host(hosts[0])],
                redundancy_groups: vec![],
                services: vec![],
            },
        )
        .await
        .unwrap();
    let web = a
        .create_service(
            &me,
            &Service {
                id: 0,
                name: "shop".into(),
                description: "the web shop".into(),
                dependencies: vec![Member::HostGroup(inner.id)],
                redundancy_groups: vec![RedundancyGroup {
                    name: "front".into(),
                    members: vec![Member::Host(hosts[1]), Member::Host(hosts[2])],
                }],
                services: vec![base.id],
            },
        )
        .await
        .unwrap();
    a.create_alert(&me, &AlertSettingsBody {
        alert: Alert {
            id: 0,
            name: "shop down".into(),
            from_states: vec![Health::Ok],
            to_states: vec![Health::Major, Health::Critical],
            scope: AlertScope { services: vec![web.id], hosts: vec![hosts[0]], ..AlertScope::default() },
            plugins: vec![],
            checks: vec![check.id],
            module: "webhook".into(),
            options: serde_json::json!({"url": "https://hooks.example.com/secret-token", "headers": {"Authorization": "Bearer sekrit"}}),
            enabled: true,
        },
        settings: prophasis_alerting::AlertSettings { renotify_every_seconds: 3600, ..Default::default() },
    })
    .await
    .unwrap();
    a.create_override(
        &me,
        &ClassifierOverride {
            id: 0,
            plugin_id: plugin.id.clone(),
            target: OverrideTarget::Host(hosts[1]),
            n_historical: 2,
            code: "return \"minor\"".into(),
        },
    )
    .await
    .unwrap();
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn export_import_round_trip_is_idempotent() {
    let src = data_dir();
    let dst = data_dir();
    let work = data_dir();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Arc::new(
            Store::open(&format!("sqlite://{}/prophasis.db", s(src.path())))
                .await
                .unwrap(),
        );
        populate(store.clone(), work.path()).await;
        store.close().await;
    });
    let pkgs = work.path().join("packages");
    let file = work.path().join("config.yaml");
    let text = ok(
        &[
            "export",
            "--include-secrets",
            "--packages",
            s(&pkgs),
            "--data",
            s(src.path()),
        ],
        None,
    );
    write(&file, &text);
    assert!(text.contains("auth_key: key-of-web0-0123456789"), "{text}");
    assert!(text.contains("- host_group: inner"), "{text}");
    assert!(pkgs.join("org.prophasis.heartbeat-1.tar.gz").exists());

    // Without secrets: no keys, no webhook URL or header values.
    let public = ok(&["export", "--data", s(src.path())], None);
    assert!(!public.contains("key-of-web"), "{public}");
    assert!(
        !public.contains("secret-token") && !public.contains("sekrit"),
        "{public}"
    );

    // Dry run into an empty database: everything to create, nothing written.
    let plan = ok(
        &[
            "import",
            s(&file),
            "--dry-run",
            "--packages",
            s(&pkgs),
            "--data",
            s(dst.path()),
        ],
        None,
    );
    assert!(plan.contains("+ host web0"), "{plan}");
    assert!(
        plan.contains("+ plugin org.prophasis.heartbeat 1"),
        "{plan}"
    );
    assert!(
        plan.contains("plan: 12 to create, 0 to update, 0 unchanged"),
        "{plan}"
    );
    let empty = ok(&["export", "--data", s(dst.path())], None);
    assert!(empty.contains("hosts: []"), "{empty}");

    // The real import shows progress and gives back the same file.
    let applied = ok(
        &[
            "import",
            s(&file),
            "--packages",
            s(&pkgs),
            "--data",
            s(dst.path()),
        ],
        None,
    );
    assert!(applied.contains("[1/12] + host web0"), "{applied}");
    assert!(applied.contains("[12/12]"), "{applied}");
    let again = ok(
        &["export", "--include-secrets", "--data", s(dst.path())],
        None,
    );
    assert_eq!(
        again, text,
        "export → import → export must give the same file"
    );

    // Idempotent: a second import changes nothing.
    let second = ok(&["import", s(&file), "--data", s(dst.path())], None);
    assert!(
        second.contains("imported: 0 created, 0 updated, 12 unchanged"),
        "{second}"
    );

    // A file without secrets keeps the stored ones; a changed field shows as ~.
    let public_file = work.path().join("public.yaml");
    write(
        &public_file,
        &public.replace("address: 10.0.0.1", "address: 10.9.9.9"),
    );
    let plan = ok(
        &[
            "import",
            s(&public_file),
            "--dry-run",
            "--data",
            s(dst.path()),
        ],
        None,
    );
    assert!(plan.contains("~ host web1: address"), "{plan}");
    assert!(plan.contains("= alert shop down"), "{plan}");
    assert!(
        plan.contains("plan: 0 to create, 1 to update, 11 unchanged"),
        "{plan}"
    );
    ok(&["import", s(&public_file), "--data", s(dst.path())], None);
    let after = ok(
        &["export", "--include-secrets", "--data", s(dst.path())],
        None,
    );
    assert!(after.contains("address: 10.9.9.9"), "{after}");
    assert!(after.contains("key-of-web1-0123456789"), "{after}");
    assert!(
        after.contains("secret-token") && after.contains("sekrit"),
        "{after}"
    );
}

#[test]
fn import_reports_every_problem_and_changes_nothing() {
    let dir = data_dir();
    let d = s(dir.path());
    ok(&["migrate", "--data", d], None);
    let file = dir.path().join("bad.yaml");
    write(
        &file,
        r#"format: 1
hosts:
  - name: web1
    address: 10.0.0.1
    auth_key: some-key-0123456789
  - name: web2
    address: 10.0.0.2
host_groups:
  - name: g
    hosts: [web1, web9]
plugins:
  - id: org.example.missing
    version: 2
    n_historical: 1
    classifier: return "ok"
checks:
  - name: c
    hosts: [web1]
    plugins: [org.example.nothing]
services:
  - name: s
    dependencies:
      - host: web1
        host_group: g
alerts:
  - name: a
    from_states: [ok]
    to_states: [critical]
    scope: {all_hosts: true}
    module: carrier-pigeon
"#,
    );
    let (_, e) = fails(&["import", s(&file), "--data", d], None);
    for expected in [
        "hosts[1].auth_key: a new host needs its agent's key",
        "host_groups[0].hosts[1]: no host named \"web9\"",
        "plugins[0]: plugin org.example.missing version 2 is missing",
        "checks[0].plugins[0]: no plugin named \"org.example.nothing\"",
        "services[0].dependencies[0]: give exactly one of",
        "alerts[0].module: unknown alert module \"carrier-pigeon\"",
        "nothing was changed",
    ] {
        assert!(e.contains(expected), "missing {expected:?} in:\n{e}");
    }
    let now = ok(&["export", "--data", d], None);
    assert!(now.contains("hosts: []"), "{now}");

    // A typo in a key is an error with its line, not silently ignored.
    write(&file, "format: 1\nhosts:\n  - name: x\n    adress: y\n");
    let (_, e) = fails(&["import", s(&file), "--data", d], None);
    assert!(
        e.contains("unknown field `adress`") && e.contains("line"),
        "{e}"
    );
}

/// The same commands on PostgreSQL: a file exported from SQLite imports into a fresh
/// PostgreSQL database (after `migrate`) and exports back identically.
#[test]
fn export_from_sqlite_imports_into_postgresql() {
    let admin = std::env::var("PROPHASIS_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("prophasis_cli_{}", std::process::id());
    let psql = |sql: &str| {
        let o = Command::new("psql")
            .args([admin.as_str(), "-qc", sql])
            .output()
            .expect("this test needs psql and PostgreSQL on 127.0.0.1:5432 (apt-get install postgresql)");
        assert!(
            o.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    psql(&format!("DROP DATABASE IF EXISTS {name}"));
    psql(&format!("CREATE DATABASE {name}"));
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);

    let src = data_dir();
    let work = data_dir();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Arc::new(
            Store::open(&format!("sqlite://{}/prophasis.db", s(src.path())))
                .await
                .unwrap(),
        );
        populate(store.clone(), work.path()).await;
        store.close().await;
    });
    let file = work.path().join("config.yaml");
    let text = ok(
        &[
            "export",
            "--include-secrets",
            "--packages",
            s(work.path()),
            "--data",
            s(src.path()),
        ],
        None,
    );
    write(&file, &text);

    let config = work.path().join("pg.toml");
    write(
        &config,
        &format!("database = {url:?}\ndata_dir = {:?}\n", s(work.path())),
    );
    let c = s(&config);
    let m = ok(&["migrate", "--config", c], None);
    assert!(m.contains("schema version before: none"), "{m}");
    let applied = ok(&["import", s(&file), "--config", c], None);
    assert!(applied.contains("imported: 12 created"), "{applied}");
    assert_eq!(
        ok(&["export", "--include-secrets", "--config", c], None),
        text
    );
    let again = ok(&["import", s(&file), "--dry-run", "--config", c], None);
    assert!(
        again.contains("0 to create, 0 to update, 12 unchanged"),
        "{again}"
    );
    psql(&format!("DROP DATABASE {name} WITH (FORCE)"));
}

/// A write that fails half way (here: another admin deleted the plugin a check of the file
/// uses, between the check of the file and the apply) undoes what was already written.
#[test]
fn a_failed_import_is_undone() {
    use prophasis::actions::config_io::{
        CheckDoc, ConfigDoc, HostDoc, HostGroupDoc, ImportError, FORMAT,
    };
    let dir = data_dir();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Arc::new(
            Store::open(&format!("sqlite://{}/prophasis.db", s(dir.path())))
                .await
                .unwrap(),
        );
        let a = Actions::offline(store.clone());
        let me = Actor::command_line();
        let host = |name: &str| HostDoc {
            name: name.into(),
            address: "10.1.1.1".into(),
            port: 4048,
            description: String::new(),
            enabled: true,
            tls_fingerprint: None,
            auth_key: Some("k-0123456789abcdef".into()),
        };
        let doc = ConfigDoc {
            format: FORMAT,
            hosts: vec![host("a"), host("b")],
            host_groups: vec![HostGroupDoc {
                name: "g".into(),
                description: String::new(),
                hosts: vec!["a".into()],
                host_groups: vec![],
            }],
            plugins: vec![],
            checks: vec![CheckDoc {
                name: "c".into(),
                description: String::new(),
                hosts: vec!["a".into()],
                host_groups: vec!["g".into()],
                plugins: vec!["org.prophasis.heartbeat".into()],
                plugin_args: Default::default(),
            }],
            schedules: vec![],
            services: vec![],
            alerts: vec![],
            classifier_overrides: vec![],
        };
        let pkg = dir.path().join("heartbeat.tar.gz");
        let plugin_dir = format!("{}/../../plugins/heartbeat", env!("CARGO_MANIFEST_DIR"));
        ok(&["plugin", "pack", &plugin_dir, "-o", s(&pkg)], None);
        a.install_plugin(&me, std::fs::read(&pkg).unwrap(), None)
            .await
            .unwrap();
        let plan = a.plan_import(&doc, &[]).await.unwrap();
        assert_eq!(plan.steps.len(), 4);
        a.delete_plugin(&me, "org.prophasis.heartbeat")
            .await
            .unwrap();
        let mut seen = Vec::new();
        let r = a
            .apply_import(&me, &plan, |n, _, step| seen.push(format!("{n} {step}")))
            .await;
        match r {
            Err(ImportError::Failed { step, undone, .. }) => {
                assert_eq!(step, "+ check c");
                assert_eq!(
                    undone, 3,
                    "hosts a, b and group g had been written and must be undone"
                );
            }
            other => panic!("expected a failed, undone import, got {other:?}"),
        }
        assert_eq!(
            seen,
            vec![
                "1 + host a",
                "2 + host b",
                "3 + host group g",
                "4 + check c"
            ]
        );
        assert!(store.list_hosts().await.unwrap().is_empty());
        assert!(store.list_host_groups().await.unwrap().is_empty());
        assert!(store.list_checks().await.unwrap().is_empty());
    });
}
