//! Running a plugin's executable and turning what it printed into a result.
//!
//! A plugin is untrusted in one sense: it may hang, fork helpers, print megabytes or
//! print garbage, and the agent must survive all of it and say what went wrong. So every
//! plugin runs in its own process group (so a timeout kills helpers too: killing only the
//! child left grandchildren running, see SPIKES.md), with a clean environment, a capped
//! stdout and stderr, and a timeout. After it exits, whatever it left in its group is
//! killed as well, so plugins cannot leak processes on a host.
//!
//! Arguments reach the executable twice, so that any language can use them easily: as
//! `--name value` pairs on the command line (the shape Nagios plugins expect) and as
//! `PROPHASIS_ARG_<NAME>` environment variables.
//!
//! Output contracts:
//! - `json` mode: stdout is exactly one JSON object `{"value": number|null, "message":
//!   string}` (other keys are ignored) and the exit code is 0.
//! - `nagios` mode: exit code 0–3 gives the state; stdout is `TEXT | perfdata` with
//!   optional long text and perfdata on later lines. The first perfdata value becomes
//!   `value`, and `message` is `"<STATE>: <TEXT>"`, the prefix classifiers match on.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use prophasis_protocol::api::{ErrorCode, RunResponse};
use prophasis_protocol::{Manifest, Mode};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest stdout accepted from a plugin; a result is one number and one message.
pub const STDOUT_CAP: usize = 64 * 1024;
/// How much of stderr is kept for error messages; the rest is read and dropped.
pub const STDERR_CAP: usize = 4 * 1024;
/// How much of a bad output is quoted back in an error message.
const QUOTE_CAP: usize = 300;

/// Why a plugin run gave no result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
    #[error("{0}")]
    BadArgs(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    BadOutput(String),
}

impl ExecError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ExecError::BadArgs(_) => ErrorCode::BadRequest,
            ExecError::Timeout(_) => ErrorCode::PluginTimeout,
            ExecError::Failed(_) => ErrorCode::PluginFailed,
            ExecError::BadOutput(_) => ErrorCode::BadOutput,
        }
    }
}

/// The timeout a plugin gets: its manifest's, or the agent default, never above the
/// agent maximum.
pub fn effective_timeout(manifest: &Manifest, default_secs: f64, max_secs: f64) -> Duration {
    let secs = manifest.timeout.unwrap_or(default_secs).min(max_secs);
    Duration::from_secs_f64(secs.max(0.001))
}

/// Checks argument names coming from a check: they become flags and variable names.
pub fn validate_arg_names(args: &BTreeMap<String, Value>) -> Result<(), ExecError> {
    for (name, value) in args {
        if name.is_empty()
            || name.len() > 64
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ExecError::BadArgs(format!(
                "argument name {name:?} must be 1 to 64 letters, digits or '_'"
            )));
        }
        if arg_text(value).contains('\0') {
            return Err(ExecError::BadArgs(format!(
                "argument `{name}` contains a NUL character"
            )));
        }
    }
    Ok(())
}

/// How an argument value is spelled on the command line and in the environment:
/// strings as they are, numbers and booleans as JSON writes them, null as an empty
/// string (and a bare `--name` flag), arrays and objects as compact JSON.
pub fn arg_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The command line after the executable: `--name value` for each argument in name
/// order, a bare `--name` for null values.
pub fn argv(args: &BTreeMap<String, Value>) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len() * 2);
    for (name, v) in args {
        out.push(format!("--{name}"));
        if !v.is_null() {
            out.push(arg_text(v));
        }
    }
    out
}

/// Runs the plugin's `entry` in `plugin_dir` with already resolved arguments.
pub async fn run_entry(
    plugin_dir: &Path,
    manifest: &Manifest,
    args: &BTreeMap<String, Value>,
    timeout: Duration,
) -> Result<RunResponse, ExecError> {
    validate_arg_names(args)?;
    let entry = manifest
        .entry
        .as_deref()
        .ok_or_else(|| ExecError::Failed("the manifest names no `entry` executable".to_string()))?;
    let program = plugin_dir.join(entry);

    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(argv(args))
        .current_dir(plugin_dir)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH")
                .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into()),
        )
        // The C locale keeps Nagios plugins' numbers and texts predictable.
        .env("LC_ALL", "C")
        .env("PROPHASIS_PLUGIN_ID", &manifest.id)
        .env("PROPHASIS_PLUGIN_DIR", plugin_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(home) = std::env::var_os("HOME") {
        cmd.env("HOME", home);
    }
    for (name, v) in args {
        cmd.env(
            format!("PROPHASIS_ARG_{}", name.to_ascii_uppercase()),
            arg_text(v),
        );
    }

    let mut child = cmd.spawn().map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("the entry `{entry}` does not exist in the plugin folder")
            }
            std::io::ErrorKind::PermissionDenied => {
                format!(
                    "the entry `{entry}` is not executable (set its execute bit in the package)"
                )
            }
            _ => format!("the entry `{entry}` could not be started: {e}"),
        };
        ExecError::Failed(why)
    })?;
    let pgid = child.id().map(|p| p as libc::pid_t);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();

    // Set when the plugin's own process has exited; read after a timeout to tell a plugin
    // that is still running from one that exited while a helper holds its output open.
    // Asking `try_wait` at the deadline instead got this wrong (issue #3).
    let mut exited = false;
    let work = async {
        let out_fut = async {
            let r = match stdout {
                Some(s) => read_capped(s, STDOUT_CAP).await,
                None => (Vec::new(), false),
            };
            // Stop a flood at once instead of waiting for the timeout.
            if r.1 {
                kill_group(pgid);
            }
            r
        };
        let err_fut = async {
            match stderr {
                Some(s) => drain_capped(s, STDERR_CAP).await,
                None => Vec::new(),
            }
        };
        // Waited for alongside the output, so the exit is seen when it happens.
        let wait_fut = async {
            let status = child.wait().await;
            exited = true;
            status
        };
        let ((out, overflow), err, status) = tokio::join!(out_fut, err_fut, wait_fut);
        (out, overflow, err, status)
    };

    let outcome = tokio::time::timeout(timeout, work).await;
    // Whatever the plugin left in its group goes now: on timeout the whole tree, after a
    // normal exit any helper it forgot. The group id cannot be reused while members live.
    let (out, overflow, err, status) = match outcome {
        Ok(r) => {
            kill_group(pgid);
            r
        }
        Err(_) => {
            kill_group(pgid);
            let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
            let secs = timeout.as_secs_f64();
            return Err(ExecError::Timeout(if exited {
                format!(
                    "the plugin exited but a process it started kept its output open for more than {secs} s; it was killed (do not leave background processes attached to stdout)"
                )
            } else {
                format!(
                    "the plugin ran longer than its timeout of {secs} s and was stopped: it and all processes it started were killed; raise `timeout` in its manifest (the agent caps it at max_timeout_secs) or make it faster"
                )
            }));
        }
    };
    if overflow {
        return Err(ExecError::BadOutput(format!(
            "the plugin printed more than {} KiB on stdout; a result is one number and a short message",
            STDOUT_CAP / 1024
        )));
    }
    let status = status.map_err(|e| ExecError::Failed(format!("waiting for the plugin: {e}")))?;
    let stderr_text = excerpt(&err);
    let with_stderr = |s: String| {
        if stderr_text.is_empty() {
            s
        } else {
            format!("{s}; stderr: {stderr_text}")
        }
    };
    let code = match status.code() {
        Some(c) => c,
        None => {
            use std::os::unix::process::ExitStatusExt;
            let sig = status.signal().unwrap_or(0);
            return Err(ExecError::Failed(with_stderr(format!(
                "the plugin was killed by signal {sig}"
            ))));
        }
    };
    match manifest.mode {
        Mode::Json => {
            if code != 0 {
                return Err(ExecError::Failed(with_stderr(format!(
                    "the plugin exited with code {code} (JSON-mode plugins must exit 0)"
                ))));
            }
            parse_json(&out).map_err(|e| match e {
                ExecError::BadOutput(m) => ExecError::BadOutput(with_stderr(m)),
                other => other,
            })
        }
        Mode::Nagios => {
            if !(0..=3).contains(&code) {
                return Err(ExecError::Failed(with_stderr(format!(
                    "the Nagios plugin exited with code {code}; only 0 (OK), 1 (WARNING), 2 (CRITICAL) and 3 (UNKNOWN) are defined"
                ))));
            }
            Ok(parse_nagios(&String::from_utf8_lossy(&out), code))
        }
    }
}

fn kill_group(pgid: Option<libc::pid_t>) {
    if let Some(p) = pgid {
        if p > 1 {
            // SAFETY: killpg only sends a signal; ESRCH (group gone) is fine to ignore.
            unsafe {
                libc::killpg(p, libc::SIGKILL);
            }
        }
    }
}

/// Reads until EOF or until more than `cap` bytes came; the flag says it overflowed.
async fn read_capped<R: AsyncRead + Unpin>(mut r: R, cap: usize) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return (buf, false),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > cap {
                    return (buf, true);
                }
            }
        }
    }
}

/// Keeps the first `cap` bytes and reads the rest away, so the writer never blocks.
async fn drain_capped<R: AsyncRead + Unpin>(mut r: R, cap: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return buf,
            Ok(n) => {
                let room = cap.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}

/// A short, single-line quote of some output for an error message.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let mut s: String = text
        .chars()
        .take(QUOTE_CAP)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > QUOTE_CAP {
        s.push('…');
    }
    s
}

const JSON_CONTRACT: &str = r#"a JSON-mode plugin must print exactly one JSON object {"value": number|null, "message": string}"#;

/// Reads a JSON-mode plugin's stdout.
pub fn parse_json(stdout: &[u8]) -> Result<RunResponse, ExecError> {
    let bad = |what: String| ExecError::BadOutput(format!("{what}; {JSON_CONTRACT}"));
    if stdout.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(bad("the plugin printed nothing".into()));
    }
    let v: Value = serde_json::from_slice(stdout).map_err(|e| {
        bad(format!(
            "the output is not valid JSON ({e}): {:?}",
            excerpt(stdout)
        ))
    })?;
    let Value::Object(map) = v else {
        return Err(bad(format!(
            "the output is JSON but not an object: {:?}",
            excerpt(stdout)
        )));
    };
    let value = match map.get("value") {
        None => {
            return Err(bad(
                "the key `value` is missing (print null when there is no number)".into(),
            ))
        }
        Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(other) => {
            return Err(bad(format!(
                "`value` is {other} but must be a number or null"
            )))
        }
    };
    let message = match map.get("message") {
        None => return Err(bad("the key `message` is missing".into())),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(bad(format!("`message` is {other} but must be a string"))),
    };
    Ok(RunResponse {
        value,
        message,
        exit_code: None,
    })
}

/// The state name of a Nagios exit code.
pub fn nagios_state(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "WARNING",
        2 => "CRITICAL",
        _ => "UNKNOWN",
    }
}

/// Reads a Nagios plugin's output (exit code already checked to be 0–3).
pub fn parse_nagios(stdout: &str, code: i32) -> RunResponse {
    let mut lines = stdout.lines();
    let first = lines.next().unwrap_or("");
    let (text, mut perf) = match first.split_once('|') {
        Some((t, p)) => (t.trim().to_string(), p.to_string()),
        None => (first.trim().to_string(), String::new()),
    };
    let mut long_text = Vec::new();
    let mut in_perf = false;
    for line in lines {
        if in_perf {
            perf.push(' ');
            perf.push_str(line);
        } else if let Some((t, p)) = line.split_once('|') {
            if !t.trim().is_empty() {
                long_text.push(t.trim_end().to_string());
            }
            perf.push(' ');
            perf.push_str(p);
            in_perf = true;
        } else {
            long_text.push(line.trim_end().to_string());
        }
    }
    while long_text.last().is_some_and(|l| l.trim().is_empty()) {
        long_text.pop();
    }
    let text = if text.is_empty() {
        "(the plugin printed no text)".to_string()
    } else {
        text
    };
    let mut message = format!("{}: {}", nagios_state(code), text);
    if !long_text.is_empty() {
        message.push('\n');
        message.push_str(&long_text.join("\n"));
    }
    let value = parse_perfdata(&perf)
        .into_iter()
        .next()
        .and_then(|p| p.value);
    RunResponse {
        value,
        message,
        exit_code: Some(code),
    }
}

/// One `label=value[UOM];warn;crit;min;max` item.
#[derive(Debug, Clone, PartialEq)]
pub struct PerfItem {
    pub label: String,
    /// `None` for the value `U` (unknown) or an unreadable number.
    pub value: Option<f64>,
    pub uom: String,
}

/// Parses Nagios performance data: space-separated items, labels optionally in single
/// quotes (with `''` for a quote inside).
pub fn parse_perfdata(perf: &str) -> Vec<PerfItem> {
    let mut items = Vec::new();
    let chars: Vec<char> = perf.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let mut label = String::new();
        if chars[i] == '\'' {
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        label.push('\'');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                label.push(chars[i]);
                i += 1;
            }
        } else {
            while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
                label.push(chars[i]);
                i += 1;
            }
        }
        if chars.get(i) != Some(&'=') {
            // Not an item: skip the token.
            while i < chars.len() && !chars[i].is_whitespace() {
                i += 1;
            }
            continue;
        }
        i += 1;
        let mut token = String::new();
        while i < chars.len() && !chars[i].is_whitespace() {
            token.push(chars[i]);
            i += 1;
        }
        let raw = token.split(';').next().unwrap_or("");
        let num_end = raw
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E' | ',')))
            .unwrap_or(raw.len());
        // Some plugins in comma-decimal locales print `0,5`; LC_ALL=C avoids most.
        let (num, uom) = raw.split_at(num_end);
        let value = num
            .replace(',', ".")
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite());
        items.push(PerfItem {
            label,
            value,
            uom: uom.to_string(),
        });
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_contract() {
        let ok = parse_json(br#" {"value": 1.5, "message": "fine", "extra": 1} "#).unwrap();
        assert_eq!((ok.value, ok.message.as_str()), (Some(1.5), "fine"));
        assert_eq!(
            parse_json(br#"{"value": null, "message": ""}"#)
                .unwrap()
                .value,
            None
        );
        for (out, needle) in [
            (&b""[..], "printed nothing"),
            (b"hello", "not valid JSON"),
            (b"[1]", "not an object"),
            (br#"{"message": "m"}"#, "`value` is missing"),
            (br#"{"value": 1}"#, "`message` is missing"),
            (br#"{"value": "1", "message": "m"}"#, "must be a number"),
            (br#"{"value": 1, "message": 2}"#, "must be a string"),
            (
                br#"{"value": 1, "message": "a"} {"value": 2, "message": "b"}"#,
                "not valid JSON",
            ),
        ] {
            match parse_json(out) {
                Err(ExecError::BadOutput(m)) => assert!(m.contains(needle), "{m}"),
                other => panic!("{out:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn nagios_output() {
        let r = parse_nagios(
            "LOAD OK - load average: 0.10, 0.20, 0.30|load1=0.100;5.000;10.000;0; load5=0.2;;;0;\n",
            0,
        );
        assert_eq!(r.message, "OK: LOAD OK - load average: 0.10, 0.20, 0.30");
        assert_eq!(r.value, Some(0.1));
        assert_eq!(r.exit_code, Some(0));

        let r = parse_nagios(
            "DISK WARNING - free space\n/ 10 GiB free\n/var 2 GiB free | '/ used'=52MB;80;90;0;100\n'/var x'=1%\n",
            1,
        );
        assert_eq!(
            r.message,
            "WARNING: DISK WARNING - free space\n/ 10 GiB free\n/var 2 GiB free"
        );
        assert_eq!(r.value, Some(52.0));

        let r = parse_nagios("no perfdata here", 2);
        assert_eq!(
            (r.value, r.message.as_str()),
            (None, "CRITICAL: no perfdata here")
        );
        let r = parse_nagios("", 3);
        assert!(r.message.starts_with("UNKNOWN: "));
    }

    #[test]
    fn perfdata_items() {
        let p = parse_perfdata("'it''s'=U;1;2 time=0.5s;;; bogus users=3;5;10;0");
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].label, "it's");
        assert_eq!(p[0].value, None);
        assert_eq!((p[1].value, p[1].uom.as_str()), (Some(0.5), "s"));
        assert_eq!(p[2].value, Some(3.0));
    }

    #[test]
    fn args_render_as_flags() {
        let args = BTreeMap::from([
            ("b".to_string(), json!(2)),
            ("a".to_string(), json!("x y")),
            ("c".to_string(), Value::Null),
            ("d".to_string(), json!([1, 2])),
        ]);
        assert_eq!(
            argv(&args),
            ["--a", "x y", "--b", "2", "--c", "--d", "[1,2]"]
        );
        assert!(validate_arg_names(&args).is_ok());
        let bad = BTreeMap::from([("a-b".to_string(), json!(1))]);
        assert!(matches!(
            validate_arg_names(&bad),
            Err(ExecError::BadArgs(_))
        ));
        let nul = BTreeMap::from([("a".to_string(), json!("x\0"))]);
        assert!(validate_arg_names(&nul).is_err());
    }
}
