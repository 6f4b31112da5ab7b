//! Host facts for `GET /ping`: what the server shows about a machine without a plugin.
//!
//! Read straight from `uname` and `/proc`, because the agent must stay small and start on
//! any Linux without extra tools. Values that cannot be read are left empty or zero rather
//! than failing the ping, whose first job is to say the agent is alive.

use prophasis_protocol::api::HostFacts;

struct Uname {
    nodename: String,
    sysname: String,
    release: String,
    machine: String,
}

fn uname() -> Option<Uname> {
    // SAFETY: utsname is plain old data; uname fills it and NUL-terminates every field.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return None;
        }
        let field = |f: &[libc::c_char]| {
            std::ffi::CStr::from_ptr(f.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        Some(Uname {
            nodename: field(&u.nodename),
            sysname: field(&u.sysname),
            release: field(&u.release),
            machine: field(&u.machine),
        })
    }
}

pub fn hostname() -> String {
    uname().map(|u| u.nodename).unwrap_or_default()
}

/// Seconds since boot, from `/proc/uptime`.
fn uptime_seconds() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map(|f| f as u64)
        .unwrap_or(0)
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
fn memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0)
}

fn cpu_count() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as u32
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1)
    }
}

/// Gathers the facts now (a few small reads; cheap enough for every ping).
pub fn collect() -> HostFacts {
    let u = uname();
    HostFacts {
        hostname: u.as_ref().map(|u| u.nodename.clone()).unwrap_or_default(),
        os: u
            .as_ref()
            .map(|u| u.sysname.to_lowercase())
            .unwrap_or_else(|| std::env::consts::OS.to_string()),
        kernel: u.as_ref().map(|u| u.release.clone()).unwrap_or_default(),
        arch: u
            .as_ref()
            .map(|u| u.machine.clone())
            .unwrap_or_else(|| std::env::consts::ARCH.to_string()),
        uptime_seconds: uptime_seconds(),
        cpu_count: cpu_count(),
        memory_bytes: memory_bytes(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn facts_are_filled_on_linux() {
        let f = super::collect();
        assert_eq!(f.os, "linux");
        assert!(!f.hostname.is_empty());
        assert!(!f.kernel.is_empty());
        assert!(f.cpu_count >= 1);
        assert!(f.memory_bytes > 0);
    }
}
