//! Host facts for `GET /ping`: what the server shows about a machine without a plugin.
//!
//! Read straight from `uname(2)` and `sysinfo(2)`, because the agent must stay small and start on
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

/// Uptime in seconds and total memory in bytes, from one `sysinfo(2)` call: far cheaper
/// than having the kernel render /proc/meminfo on every ping.
fn sysinfo() -> (u64, u64) {
    // SAFETY: sysinfo fills the zeroed struct and has no other effect.
    unsafe {
        let mut si: libc::sysinfo = std::mem::zeroed();
        if libc::sysinfo(&mut si) != 0 {
            return (0, 0);
        }
        let unit = if si.mem_unit == 0 {
            1
        } else {
            si.mem_unit as u64
        };
        (si.uptime.max(0) as u64, si.totalram as u64 * unit)
    }
}

/// Online CPUs, read once: glibc answers this by parsing a /sys file, and CPU hotplug on a
/// monitored host is rare enough that a restart of the agent may pick it up.
fn cpu_count() -> u32 {
    static COUNT: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *COUNT.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        if n > 0 {
            n as u32
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1)
        }
    })
}

/// Gathers the facts now (a few small reads; cheap enough for every ping).
pub fn collect() -> HostFacts {
    let u = uname();
    let (uptime, memory) = sysinfo();
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
        uptime_seconds: uptime,
        cpu_count: cpu_count(),
        memory_bytes: memory,
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
