//! `process_running`: how many processes have a given name.
//!
//! Matches the kernel's process name (`/proc/<pid>/comm`, cut to 15 characters by the
//! kernel), or for longer names the file name of the command (`argv[0]`).

use std::io::Read;
use std::path::Path;

use super::{arg_str_req, ok, ArgDef, ArgKind, Args, CollectorError, CollectorInfo, Ctx};
use prophasis_protocol::api::RunResponse;

/// The kernel keeps 15 bytes of a process name.
const COMM_LEN: usize = 15;

pub const INFO: CollectorInfo = CollectorInfo {
    name: "process_running",
    description: "Number of running processes with a name",
    value: "count of processes whose name (comm) or command file name equals `name`",
    args: &[ArgDef {
        name: "name",
        kind: ArgKind::String,
        required: true,
        default: None,
        description: "process name, e.g. nginx",
    }],
};

pub fn run(ctx: &Ctx<'_>, args: &Args) -> Result<RunResponse, CollectorError> {
    let name = arg_str_req(args, "name")?;
    let short: &str = if name.len() > COMM_LEN {
        name.get(..COMM_LEN).unwrap_or(name)
    } else {
        name
    };
    let rd = std::fs::read_dir(ctx.proc_root).map_err(|e| {
        CollectorError::failed(format!("cannot list {}: {e}", ctx.proc_root.display()))
    })?;
    let mut count = 0u32;
    // One path buffer for every process: `<proc>/<pid>/comm`, rewritten in place.
    let mut path = ctx.proc_root.to_path_buf();
    for entry in rd.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str() else {
            continue;
        };
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        path.push(pid);
        path.push("comm");
        // Processes may exit while we look: a missing file is not an error.
        let mut found = comm_is(&path, short.as_bytes());
        path.pop();
        if found && name.len() > COMM_LEN {
            path.push("cmdline");
            found = std::fs::read(&path).is_ok_and(|cmdline| {
                let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
                argv0.rsplit(|b| *b == b'/').next().unwrap_or_default() == name.as_bytes()
            });
            path.pop();
        }
        path.pop();
        if found {
            count += 1;
        }
    }
    let msg = match count {
        0 => format!("no process named {name}"),
        1 => format!("1 process named {name}"),
        n => format!("{n} processes named {name}"),
    };
    ok(Some(f64::from(count)), msg)
}

/// True when the `comm` file at `path` holds `want`. One open and one read into a stack
/// buffer: the kernel renders the whole name (at most 16 bytes with the newline) in the
/// first read, and this runs once per process on the host, so `read_to_string`'s stat,
/// probe read and allocation would cost more than the comparison.
fn comm_is(path: &Path, want: &[u8]) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut buf = [0u8; 64];
    let n = loop {
        match f.read(&mut buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    };
    let got = &buf[..n];
    got.strip_suffix(b"\n").unwrap_or(got) == want
}

#[cfg(test)]
mod tests {
    use crate::collectors::{testutil::lay, Args, Collectors};

    #[test]
    fn counts_fixture_processes() {
        let d = tempfile::tempdir().unwrap();
        lay(
            d.path(),
            &[
                ("1/comm", "systemd\n"),
                ("20/comm", "nginx\n"),
                ("21/comm", "nginx\n"),
                ("30/comm", "a-very-long-pro\n"),
                ("30/cmdline", "/usr/bin/a-very-long-process-name\0--flag\0"),
                ("31/comm", "a-very-long-pro\n"),
                ("31/cmdline", "/usr/bin/a-very-long-process-other\0"),
                ("self/comm", "nginx\n"),
                ("uptime", "1 1\n"),
            ],
        );
        let c = Collectors::with_root(d.path(), d.path());
        let args = |n: &str| Args::from([("name".to_string(), serde_json::json!(n))]);
        assert_eq!(
            c.run("process_running", &args("nginx")).unwrap().value,
            Some(2.0)
        );
        assert_eq!(
            c.run("process_running", &args("sshd")).unwrap().value,
            Some(0.0)
        );
        let r = c
            .run("process_running", &args("a-very-long-process-name"))
            .unwrap();
        assert_eq!(r.value, Some(1.0));
        assert!(c.run("process_running", &Args::new()).is_err());
    }

    #[test]
    fn finds_this_test_process() {
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        let args = Args::from([("name".to_string(), serde_json::json!(comm.trim()))]);
        let r = Collectors::new().run("process_running", &args).unwrap();
        assert!(r.value.unwrap() >= 1.0, "{}", r.message);
    }
}
