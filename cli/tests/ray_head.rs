//! `scripts/ray_head start`: a Ray head whose every port listens on loopback only, that refuses
//! a client without its token, and that a Ray sweep reaches with the settings the script prints.
//! (A test binary of its own: its head never runs beside sweep.rs's.)

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{json, write_config, BIN};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/ray_head");
/// Set on the script: every process of its head inherits it, which is how the test finds them.
const MARKER: &str = "WORMNET_RAY_HEAD_TEST";

/// The Python the sweep's Ray driver uses (scripts/env.sh sets WORMNET_PYTHON).
fn python() -> PathBuf {
    std::env::var("WORMNET_PYTHON").map_or("python3".into(), PathBuf::from)
}

/// The processes started with `MARKER=marker` in their environment.
fn marked(marker: &str) -> Vec<i32> {
    let needle = format!("{MARKER}={marker}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
        })
        .collect()
}

/// Stops the head's processes (only these: `ray stop` would stop every Ray of this user).
struct Head(String);

impl Drop for Head {
    fn drop(&mut self) {
        let start = Instant::now();
        let mut signal = libc::SIGTERM;
        loop {
            let pids = marked(&self.0);
            if pids.is_empty() || start.elapsed() > Duration::from_secs(30) {
                return;
            }
            if start.elapsed() > Duration::from_secs(15) {
                signal = libc::SIGKILL;
            }
            for pid in pids {
                // SAFETY: signalling processes this test started (they carry its marker).
                unsafe { libc::kill(pid, signal) };
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// The TCP addresses the processes `pids` listen on, from /proc/net/tcp{,6}.
fn listening(pids: &[i32]) -> Vec<(IpAddr, u16)> {
    let mut inodes = Vec::new();
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.filter_map(Result::ok) {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let link = link.to_string_lossy().into_owned();
            if let Some(inode) = link
                .strip_prefix("socket:[")
                .and_then(|l| l.strip_suffix(']'))
            {
                inodes.push(inode.to_string());
            }
        }
    }
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address, state (0A: LISTEN), inode.
            if f[3] != "0A" || !inodes.iter().any(|i| i == f[9]) {
                continue;
            }
            let (addr, port) = f[1].split_once(':').unwrap();
            // The kernel prints each 32-bit word of the address in host (little-endian) order.
            let words: Vec<[u8; 4]> = (0..addr.len() / 8)
                .map(|i| u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16).unwrap())
                .map(u32::to_le_bytes)
                .collect();
            let ip = match words.as_slice() {
                [w] => IpAddr::V4(Ipv4Addr::from(*w)),
                ws => IpAddr::V6(Ipv6Addr::from(
                    <[u8; 16]>::try_from(ws.concat().as_slice()).unwrap(),
                )),
            };
            out.push((ip, u16::from_str_radix(port, 16).unwrap()));
        }
    }
    out
}

fn loopback(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// `ray.init` at `address` and a task, with `env`; prints CONNECTED when both worked.
fn client(address: &str, env: &[(String, String)], home: &Path) -> (bool, String) {
    let code = "import sys, ray\nray.init(address=sys.argv[1], log_to_driver=False)\n\
                print('CONNECTED', ray.get(ray.remote(lambda: 7).remote()))\n";
    let out = Command::new(python())
        .args(["-c", code, address])
        .env_remove("RAY_AUTH_MODE")
        .env_remove("RAY_AUTH_TOKEN")
        .env_remove("RAY_AUTH_TOKEN_PATH")
        .env_remove("RAY_ADDRESS")
        .env("HOME", home)
        .env("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .expect("python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (text.contains("CONNECTED 7"), text)
}

#[test]
fn the_ray_head_listens_on_loopback_only_and_wants_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let token = dir.path().join("token");
    let marker = format!("{}-{port}", std::process::id());
    let _head = Head(marker.clone());
    let out = Command::new(SCRIPT)
        .args(["start", "1"])
        .env("RAY_PORT", port.to_string())
        .env("RAY_AUTH_TOKEN_PATH", &token)
        .env_remove("RAY_AUTH_TOKEN")
        .env_remove("RAY_AUTH_MODE")
        .env(MARKER, &marker)
        .stdin(Stdio::null())
        .output()
        .expect("scripts/ray_head runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `export K=V …`: what a client needs.
    let exports: Vec<(String, String)> = stdout
        .trim()
        .strip_prefix("export ")
        .unwrap_or_else(|| panic!("{stdout}"))
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let get = |k: &str| exports.iter().find(|e| e.0 == k).map(|e| e.1.as_str());
    let address = format!("127.0.0.1:{port}");
    assert_eq!(get("RAY_ADDRESS"), Some(address.as_str()), "{stdout}");
    assert_eq!(get("RAY_AUTH_MODE"), Some("token"), "{stdout}");
    // A fresh token: 256 random bits, readable by this user only.
    let secret = std::fs::read_to_string(&token).unwrap();
    assert!(secret.len() == 64 && secret.chars().all(|c| c.is_ascii_hexdigit()));
    let mode = std::os::unix::fs::PermissionsExt::mode(&token.metadata().unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "token file mode {mode:o}");

    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let (connected, log) = client(&address, &[], &home);
    assert!(!connected, "a client without the token got in:\n{log}");
    assert!(
        log.contains("Authentication token is missing or incorrect"),
        "refused for another reason:\n{log}"
    );
    let (connected, log) = client(&address, &exports, &home);
    assert!(
        connected,
        "a client with the printed settings was refused:\n{log}"
    );

    // By now every process of the head is up: each port is on loopback.
    let ports = listening(&marked(&marker));
    assert!(
        ports.iter().any(|p| p.1 == port),
        "the head's port is not among {ports:?}"
    );
    let open: Vec<_> = ports.iter().filter(|p| !loopback(&p.0)).collect();
    assert!(
        open.is_empty(),
        "listening beyond loopback: {open:?} (all: {ports:?})"
    );

    // A Ray sweep reaches it with the printed settings (the token through the environment).
    let config = write_config(dir.path(), 256, 0);
    let sweep = dir.path().join("sweep.toml");
    std::fs::write(&sweep, format!("config = {:?}\nseeds = [1]\n", config)).unwrap();
    let out_dir = dir.path().join("out");
    let out = Command::new(BIN)
        .arg("sweep")
        .arg(&sweep)
        .arg("--out")
        .arg(&out_dir)
        .args(["--executor", "ray"])
        .env_remove("RAY_AUTH_TOKEN")
        .envs(exports.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = json(&out_dir.join("manifest.json"));
    assert_eq!(manifest["trials"][0]["status"], "finished", "{manifest}");
}
