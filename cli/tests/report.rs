//! `report.html` in a real browser (headless Chromium, installed by `scripts/setup --render`):
//! the page opens from disk, moves to a later step — its frame and its cursors follow — and
//! logs no error to the console.
#![cfg(feature = "render")]

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_wormnet");

/// The page's DOM after its scripts ran, and what Chromium logged (console included).
fn open(page: &Path, step: Option<usize>, profile: &Path) -> (String, String) {
    let url = format!(
        "file://{}{}",
        page.display(),
        step.map_or(String::new(), |s| format!("#step={s}"))
    );
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=3000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&url)
        .output()
        .expect("chromium runs (scripts/setup --render installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The value of `attr` on the element with `id` in a dumped DOM.
fn attribute(dom: &str, id: &str, attr: &str) -> String {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let start = dom[..at].rfind('<').unwrap();
    let end = at + dom[at..].find('>').unwrap();
    let tag = &dom[start..end];
    let key = format!("{attr}=\"");
    let from = tag
        .find(&key)
        .unwrap_or_else(|| panic!("#{id} has no {attr}: {tag}"))
        + key.len();
    tag[from..from + tag[from..].find('"').unwrap()].to_string()
}

#[test]
fn the_report_moves_to_a_later_step_in_chromium_without_console_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/pendulum.toml");
    let out = tmp.path().join("audit");
    let status = Command::new(BIN)
        .args([
            "record",
            "--episodes",
            "1",
            "--max-steps",
            "30",
            "--no-gif",
            "--no-mp4",
        ])
        .args(["--width", "320", "--height", "240", "--out"])
        .arg(&out)
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let page = out.join("report.html");
    let profile = tmp.path().join("profile");
    let (first, log_first) = open(&page, None, &profile);
    let (later, log_later) = open(&page, Some(20), &profile);
    for log in [&log_first, &log_later] {
        let console: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
            .collect();
        assert!(console.is_empty(), "console messages: {console:?}");
    }
    assert!(
        first.contains("step 1 / 30"),
        "the page drew its first step"
    );
    assert!(later.contains("step 20 / 30"), "the page moved to step 20");
    let (frame_a, frame_b) = (
        attribute(&first, "frame", "src"),
        attribute(&later, "frame", "src"),
    );
    assert_ne!(frame_a, frame_b, "the frame follows the step");
    assert!(out.join(&frame_b).exists(), "{frame_b} is a recorded frame");
    for canvas in ["heatmap", "obs", "act"] {
        let (a, b) = (
            attribute(&first, canvas, "data-cursor"),
            attribute(&later, canvas, "data-cursor"),
        );
        assert!(
            b.parse::<i32>().unwrap() > a.parse::<i32>().unwrap(),
            "{canvas}: the cursor moved right ({a} → {b})"
        );
    }
}
