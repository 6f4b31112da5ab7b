//! Built-in collectors: measurements compiled into the agent that need no package.
//!
//! The common checks (load, memory, disks, RAID, …) should not cost a fork+exec and a
//! package each: a collector reads a few small files under /proc and /sys directly, well
//! inside the agent's budget of about 50 µs CPU per request. A plugin package names one
//! with `"builtin": "<name>"` in its manifest; the server still owns its classifier and
//! view. Each collector lives in its own module with its argument schema beside its code.
//!
//! [`Collectors::with_root`] points the readers at fixture folders, so the parsers are
//! tested on recorded /proc files (a degraded RAID, say) that no test machine has.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use prophasis_protocol::api::{ErrorCode, RunResponse};

mod cpu_load;
mod disk_usage;
mod file_age;
mod heartbeat;
mod memory_usage;
mod network;
mod process_running;
mod raid_md;
mod swap_usage;
mod tcp_port_open;
mod uptime;

/// Arguments as the API delivers them (`{"args": {...}}`).
pub type Args = BTreeMap<String, serde_json::Value>;

/// The JSON type an argument takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    String,
    /// A whole number; a string of digits is accepted too.
    Integer,
}

/// One argument of a collector.
#[derive(Debug, Clone, Copy)]
pub struct ArgDef {
    pub name: &'static str,
    pub kind: ArgKind,
    pub required: bool,
    /// Shown in docs; the collector applies it.
    pub default: Option<&'static str>,
    pub description: &'static str,
}

/// What a collector measures, for documentation and the server's plugin forms.
#[derive(Debug, Clone, Copy)]
pub struct CollectorInfo {
    pub name: &'static str,
    pub description: &'static str,
    /// What `value` holds.
    pub value: &'static str,
    pub args: &'static [ArgDef],
}

/// Why a collector could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorError {
    code: ErrorCode,
    pub message: String,
}

impl CollectorError {
    /// `bad_request` for bad or missing arguments, `plugin_not_found` for an unknown
    /// collector, `plugin_failed` when the measurement itself failed.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub(crate) fn bad_args(message: impl Into<String>) -> Self {
        CollectorError {
            code: ErrorCode::BadRequest,
            message: message.into(),
        }
    }

    pub(crate) fn failed(message: impl Into<String>) -> Self {
        CollectorError {
            code: ErrorCode::PluginFailed,
            message: message.into(),
        }
    }
}

impl fmt::Display for CollectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CollectorError {}

/// Where the collectors read from.
pub(crate) struct Ctx<'a> {
    pub proc_root: &'a Path,
    pub sys_root: &'a Path,
    pub state: &'a Mutex<State>,
}

impl Ctx<'_> {
    pub fn read_proc(&self, rel: &str) -> Result<String, CollectorError> {
        read(&self.proc_root.join(rel))
    }

    /// [`with_file`] on a file under the /proc root.
    pub fn with_proc<R>(
        &self,
        rel: &str,
        parse: impl FnOnce(&str) -> Result<R, CollectorError>,
    ) -> Result<R, CollectorError> {
        with_file(&self.proc_root.join(rel), parse)
    }
}

pub(crate) fn read(path: &Path) -> Result<String, CollectorError> {
    with_file(path, |text| Ok(text.to_string()))
}

thread_local! {
    /// One buffer per thread for file contents, reused from call to call.
    static FILE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads a small /proc or /sys file and hands its text to `parse`, without allocating once
/// the thread's buffer has grown to fit.
///
/// `fs::read_to_string` stats the file, seeks, and starts with a 32-byte probe read before
/// the real one: on these files (size 0 to `stat`) that is three extra system calls, a
/// large share of a collector that should cost a few microseconds.
pub(crate) fn with_file<R>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<R, CollectorError>,
) -> Result<R, CollectorError> {
    let cannot =
        |e: std::io::Error| CollectorError::failed(format!("cannot read {}: {e}", path.display()));
    FILE_BUF.with(|cell| {
        // A nested call (a parser reading another file) gets a buffer of its own.
        let mut own = Vec::new();
        let mut guard = cell.try_borrow_mut().ok();
        let buf = guard.as_deref_mut().unwrap_or(&mut own);
        let len = read_all(path, buf).map_err(cannot)?;
        let text = std::str::from_utf8(&buf[..len])
            .map_err(|_| CollectorError::failed(format!("{} is not text", path.display())))?;
        parse(text)
    })
}

/// Reads the whole file into `buf` (grown as needed, never shrunk) with plain read(2)
/// calls until end of file; returns the length read.
fn read_all(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut file = std::fs::File::open(path)?;
    if buf.len() < 4096 {
        buf.resize(4096, 0);
    }
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => return Ok(len),
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Previous samples, for rates since the last call.
#[derive(Default)]
pub(crate) struct State {
    pub cpu: Option<cpu_load::CpuSample>,
    pub net: HashMap<String, (Instant, u64, u64)>,
}

/// The built-in collectors of one agent.
pub struct Collectors {
    proc_root: PathBuf,
    sys_root: PathBuf,
    state: Mutex<State>,
}

type RunFn = fn(&Ctx<'_>, &Args) -> Result<RunResponse, CollectorError>;

const ALL: &[(CollectorInfo, RunFn)] = &[
    (cpu_load::INFO, cpu_load::run),
    (memory_usage::INFO, memory_usage::run),
    (swap_usage::INFO, swap_usage::run),
    (disk_usage::INFO, disk_usage::run),
    (raid_md::INFO, raid_md::run),
    (heartbeat::INFO, heartbeat::run),
    (uptime::INFO, uptime::run),
    (network::INFO, network::run),
    (process_running::INFO, process_running::run),
    (tcp_port_open::INFO, tcp_port_open::run),
    (file_age::INFO, file_age::run),
];

impl Default for Collectors {
    fn default() -> Self {
        Self::new()
    }
}

impl Collectors {
    /// Collectors reading this machine's /proc and /sys.
    pub fn new() -> Self {
        Self::with_root("/proc", "/sys")
    }

    /// Collectors reading fixture folders laid out like /proc and /sys.
    pub fn with_root(proc_root: impl Into<PathBuf>, sys_root: impl Into<PathBuf>) -> Self {
        Collectors {
            proc_root: proc_root.into(),
            sys_root: sys_root.into(),
            state: Mutex::new(State::default()),
        }
    }

    /// The collector names, as a manifest's `builtin` gives them.
    pub fn names() -> &'static [&'static str] {
        prophasis_protocol::package::BUILTIN_COLLECTORS
    }

    /// Name, description, value and argument schema of every collector.
    pub fn describe() -> impl Iterator<Item = &'static CollectorInfo> {
        ALL.iter().map(|(i, _)| i)
    }

    /// Runs collector `name` with the (already defaulted) arguments.
    pub fn run(&self, name: &str, args: &Args) -> Result<RunResponse, CollectorError> {
        let Some((info, f)) = ALL.iter().find(|(i, _)| i.name == name) else {
            return Err(CollectorError {
                code: ErrorCode::PluginNotFound,
                message: format!(
                    "no built-in collector named {name:?}: the agent has {}",
                    Self::names().join(", ")
                ),
            });
        };
        for (key, _) in args.iter() {
            if !info.args.iter().any(|a| a.name == key) {
                return Err(CollectorError::bad_args(format!(
                    "collector {name} has no argument {key:?}; it takes: {}",
                    if info.args.is_empty() {
                        "none".to_string()
                    } else {
                        info.args
                            .iter()
                            .map(|a| a.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )));
            }
        }
        let ctx = Ctx {
            proc_root: &self.proc_root,
            sys_root: &self.sys_root,
            state: &self.state,
        };
        f(&ctx, args)
    }
}

/// A string argument, `None` when absent.
pub(crate) fn arg_str<'a>(args: &'a Args, name: &str) -> Result<Option<&'a str>, CollectorError> {
    match args.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(CollectorError::bad_args(format!(
            "argument {name} must be a string, got {other}"
        ))),
    }
}

/// A required string argument.
pub(crate) fn arg_str_req<'a>(args: &'a Args, name: &str) -> Result<&'a str, CollectorError> {
    match arg_str(args, name)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(CollectorError::bad_args(format!(
            "argument {name} is required: set it in the check's plugin arguments"
        ))),
    }
}

/// An integer argument (a number or a string of digits), `None` when absent.
pub(crate) fn arg_u64(args: &Args, name: &str) -> Result<Option<u64>, CollectorError> {
    let bad = || CollectorError::bad_args(format!("argument {name} must be a whole number"));
    match args.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n.as_u64().map(Some).ok_or_else(bad),
        Some(serde_json::Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

/// `1.5 GiB` style sizes for messages.
pub(crate) fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {}", UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

pub(crate) fn ok(value: Option<f64>, message: String) -> Result<RunResponse, CollectorError> {
    Ok(RunResponse {
        value,
        message,
        exit_code: None,
    })
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::fs;
    use std::path::Path;

    /// Writes `files` (path relative to `root`, content) under `root`.
    pub fn lay(root: &Path, files: &[(&str, &str)]) {
        for (rel, content) in files {
            let p = root.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, content).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_protocol_list_and_dispatch() {
        let mut ours: Vec<_> = Collectors::describe().map(|i| i.name).collect();
        let mut theirs = Collectors::names().to_vec();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn unknown_names_and_arguments() {
        let c = Collectors::new();
        let e = c.run("nope", &Args::new()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::PluginNotFound);
        assert!(e.message.contains("cpu_load"));
        let args = Args::from([("bogus".to_string(), serde_json::json!(1))]);
        let e = c.run("heartbeat", &args).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadRequest);
        assert!(e.message.contains("takes: none"), "{e}");
    }

    #[test]
    fn heartbeat_and_argument_parsing() {
        let c = Collectors::new();
        let r = c.run("heartbeat", &Args::new()).unwrap();
        assert_eq!((r.value, r.message.as_str()), (Some(1.0), "alive"));
        let args = Args::from([
            ("a".to_string(), serde_json::json!("22")),
            ("b".to_string(), serde_json::json!(22)),
            ("c".to_string(), serde_json::json!(-1)),
        ]);
        assert_eq!(arg_u64(&args, "a").unwrap(), Some(22));
        assert_eq!(arg_u64(&args, "b").unwrap(), Some(22));
        assert!(arg_u64(&args, "c").is_err());
        assert_eq!(arg_u64(&args, "d").unwrap(), None);
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
    }

    #[test]
    fn file_reads_grow_the_buffer_and_nest() {
        let d = tempfile::tempdir().unwrap();
        let big = "x".repeat(20_000) + "end";
        testutil::lay(d.path(), &[("big", &big), ("small", "42\n"), ("bin", "ok")]);
        std::fs::write(d.path().join("bin"), [0xff, 0xfe]).unwrap();
        let got = with_file(&d.path().join("big"), |t| Ok(t.len())).unwrap();
        assert_eq!(got, big.len());
        // A smaller file after a big one sees only its own bytes.
        let inner = with_file(&d.path().join("small"), |outer| {
            let nested = with_file(&d.path().join("big"), |t| Ok(t.ends_with("end")))?;
            Ok((outer.to_string(), nested))
        })
        .unwrap();
        assert_eq!(inner, ("42\n".to_string(), true));
        let e = with_file(&d.path().join("missing"), |_| Ok(())).unwrap_err();
        assert_eq!(e.code(), ErrorCode::PluginFailed);
        assert!(e.message.contains("cannot read"), "{e}");
        let e = with_file(&d.path().join("bin"), |_| Ok(())).unwrap_err();
        assert!(e.message.contains("not text"), "{e}");
    }

    #[test]
    fn every_collector_runs_on_this_machine() {
        let c = Collectors::new();
        let args = |pairs: &[(&str, serde_json::Value)]| -> Args {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        };
        let cases: Vec<(&str, Args)> = vec![
            ("cpu_load", Args::new()),
            ("memory_usage", Args::new()),
            ("swap_usage", Args::new()),
            ("disk_usage", Args::new()),
            ("raid_md", Args::new()),
            ("heartbeat", Args::new()),
            ("uptime", Args::new()),
            ("network", args(&[("interface", serde_json::json!("lo"))])),
            (
                "process_running",
                args(&[("name", serde_json::json!("nonexistent-xyz"))]),
            ),
            ("tcp_port_open", args(&[("port", serde_json::json!(1))])),
            (
                "file_age",
                args(&[("path", serde_json::json!("/proc/self"))]),
            ),
        ];
        for (name, a) in cases {
            let r = c.run(name, &a).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!r.message.is_empty(), "{name}");
        }
    }
}
