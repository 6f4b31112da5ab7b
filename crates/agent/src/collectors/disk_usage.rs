//! `disk_usage`: percentage of a mounted filesystem in use, as `df` shows it.
//!
//! The path must be a mount point: a plain folder would silently measure whatever
//! filesystem holds it, and a check named "/data" that measures "/" because /data failed
//! to mount is exactly the failure monitoring must not hide.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{arg_str, human_bytes, ok, ArgDef, ArgKind, Args, CollectorError, CollectorInfo, Ctx};
use prophasis_protocol::api::RunResponse;

pub const INFO: CollectorInfo = CollectorInfo {
    name: "disk_usage",
    description: "Space used on a mounted filesystem",
    value: "percent used, as df computes it: used / (used + available to users) * 100",
    args: &[ArgDef {
        name: "mount",
        kind: ArgKind::String,
        required: false,
        default: Some("/"),
        description: "mount point to measure",
    }],
};

/// Mount points listed in /proc/self/mountinfo (octal escapes such as `\040` decoded).
pub(crate) fn mount_points(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A folder on another device than its parent is a mount point: two stat calls, where
/// reading /proc/self/mountinfo costs about 100 µs on a machine with many mounts. Only a
/// path on its parent's device (a bind mount, or not a mount point) needs mountinfo.
fn is_mount_point(ctx: &Ctx<'_>, path: &str) -> Result<bool, CollectorError> {
    use std::os::unix::fs::MetadataExt;
    if path == "/" {
        return Ok(true);
    }
    let here = std::fs::metadata(path);
    let parent = std::fs::metadata(Path::new(path).join(".."));
    if let (Ok(h), Ok(p)) = (&here, &parent) {
        if h.dev() != p.dev() {
            return Ok(true);
        }
    }
    let mounts = mount_points(&ctx.read_proc("self/mountinfo")?);
    Ok(mounts.iter().any(|m| m == path))
}

pub fn run(ctx: &Ctx<'_>, args: &Args) -> Result<RunResponse, CollectorError> {
    let mount = arg_str(args, "mount")?.unwrap_or("/");
    let trimmed = if mount.len() > 1 {
        mount.trim_end_matches('/')
    } else {
        mount
    };
    if !trimmed.starts_with('/') {
        return Err(CollectorError::bad_args(format!(
            "argument mount must be an absolute path such as /var, got {mount:?}"
        )));
    }
    if !Path::new(trimmed).exists() {
        return Err(CollectorError::bad_args(format!(
            "mount {trimmed:?} does not exist on this host"
        )));
    }
    if !is_mount_point(ctx, trimmed)? {
        let mounts = mount_points(&ctx.read_proc("self/mountinfo")?);
        let mut shown: Vec<&str> = mounts
            .iter()
            .map(String::as_str)
            .filter(|m| {
                !m.starts_with("/proc")
                    && !m.starts_with("/sys")
                    && !m.starts_with("/dev")
                    && !m.starts_with("/run")
            })
            .collect();
        shown.sort();
        shown.dedup();
        return Err(CollectorError::bad_args(format!(
            "{trimmed:?} is not a mount point (it would measure the filesystem that holds it); mount points here: {}",
            shown.join(", ")
        )));
    }
    let c = CString::new(Path::new(trimmed).as_os_str().as_bytes())
        .map_err(|_| CollectorError::bad_args("argument mount contains a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(CollectorError::failed(format!(
            "cannot measure {trimmed}: {}",
            std::io::Error::last_os_error()
        )));
    }
    let frsize = st.f_frsize as f64;
    let used = (st.f_blocks as f64 - st.f_bfree as f64) * frsize;
    let avail = st.f_bavail as f64 * frsize;
    let size = st.f_blocks as f64 * frsize;
    let pct = if used + avail > 0.0 {
        used * 100.0 / (used + avail)
    } else {
        0.0
    };
    ok(
        Some((pct * 100.0).round() / 100.0),
        format!(
            "{trimmed} {pct:.1}% used: {} free of {}",
            human_bytes(avail),
            human_bytes(size)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::{testutil::lay, Collectors};
    use prophasis_protocol::api::ErrorCode;

    const MOUNTINFO: &str = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
        23 22 0:5 / /proc rw - proc proc rw\n\
        24 22 8:2 / /mnt/my\\040disk rw - ext4 /dev/sdb1 rw\n";

    #[test]
    fn parses_mountinfo() {
        assert_eq!(mount_points(MOUNTINFO), ["/", "/proc", "/mnt/my disk"]);
    }

    #[test]
    fn measures_root_and_refuses_non_mount_points() {
        let d = tempfile::tempdir().unwrap();
        lay(d.path(), &[("self/mountinfo", MOUNTINFO)]);
        let c = Collectors::with_root(d.path(), d.path());
        let r = c.run("disk_usage", &Args::new()).unwrap();
        let v = r.value.unwrap();
        assert!((0.0..=100.0).contains(&v), "{v}");
        assert!(r.message.starts_with("/ "), "{}", r.message);

        let args = |m: &str| Args::from([("mount".to_string(), serde_json::json!(m))]);
        // A folder on the same filesystem as its parent, and not in the fixture.
        let sub = d.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let e = c
            .run("disk_usage", &args(sub.to_str().unwrap()))
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadRequest);
        assert!(e.message.contains("not a mount point"), "{e}");
        assert!(e.message.contains("/mnt/my disk"), "{e}");
        let e = c.run("disk_usage", &args("/no/such/path")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadRequest);
        assert!(e.message.contains("does not exist"), "{e}");
        let e = c.run("disk_usage", &args("relative")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadRequest);
    }

    #[test]
    fn real_root_is_a_mount_point() {
        let r = Collectors::new().run("disk_usage", &Args::new()).unwrap();
        assert!(r.value.is_some());
    }
}
