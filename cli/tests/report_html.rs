//! Reports are meant to be shared, so opening one must never run code that came with the run:
//! a checkpoint whose every string (observation and action names, config strings, ablation
//! rows, the path recorded) carries HTML and script payloads is recorded, and its
//! `report.html` is opened in real headless Chromium (installed by `scripts/setup --render`),
//! where no payload may run and each must show as plain text.
#![cfg(feature = "render")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{write_config, BIN};

/// What every payload's script does if it ever runs: a title no page text spells out (the
/// payload text holds `'PW'+'NED'`, never the word itself).
const MARKER: &str = "PWNED";
const IMG: &str = "<img src=x onerror=document.title='PW'+'NED'>";
const ATTR: &str = "\"'><svg onload=document.title='PW'+'NED'>";
const SCRIPT: &str = "</script><script>document.title='PW'+'NED'</script>";
const PLACEHOLDERS: &str = "{{data}}{{wiring}}{{title}}";

/// A tiny cartpole run, trained for real.
fn train(dir: &Path) -> PathBuf {
    let config = write_config(dir, 128, 0);
    let run = dir.join("run");
    let out = Command::new(BIN)
        .args(["train", "--quiet", "--run-dir"])
        .arg(&run)
        .arg(&config)
        .output()
        .expect("wormnet runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run
}

/// Puts payloads into every string of the run's checkpoints and ablation table.
fn poison(run: &Path) {
    for entry in std::fs::read_dir(run).unwrap().flatten() {
        let path = entry.path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(mut sidecar) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        if sidecar.get("env_spec").is_none() {
            continue;
        }
        let spec = &mut sidecar["env_spec"];
        let payloads = [
            format!("{IMG}{PLACEHOLDERS}"),
            format!("{SCRIPT}<!--\u{2028}{ATTR}"),
        ];
        for (k, name) in spec["observation_names"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .enumerate()
        {
            *name = payloads[k % 2].clone().into();
        }
        spec["action_names"] = serde_json::json!([format!("{IMG}{ATTR}")]);
        sidecar["config"]["run"]["name"] = format!("{IMG}{ATTR}{PLACEHOLDERS}").into();
        std::fs::write(&path, serde_json::to_string(&sidecar).unwrap()).unwrap();
    }
    std::fs::create_dir_all(run.join("ablation")).unwrap();
    let row = serde_json::json!({ "neuron": SCRIPT, IMG: ATTR, "delta": 1.5 });
    std::fs::write(run.join("ablation/ablation.jsonl"), format!("{row}\n")).unwrap();
}

/// The page's DOM after its scripts ran for 3 s of virtual time.
fn open_in_chromium(page: &Path, profile: &Path) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=3000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run chromium ({e}): run scripts/setup --render to install it")
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The markup of the element with `id` up to the end tag `end` (as the DOM dump writes it).
fn element<'a>(dom: &'a str, id: &str, end: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    &dom[at..at
        + dom[at..]
            .find(end)
            .unwrap_or_else(|| panic!("#{id} has no {end}"))]
}

/// `s` as the DOM dump writes text: `&`, `<`, `>` escaped (and U+00A0, absent here).
fn as_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[test]
fn a_report_of_a_run_full_of_script_payloads_runs_none_of_them_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let run = train(tmp.path());
    poison(&run);
    // The recorded path carries the payloads too (`/` splits `</script>` into folders).
    let target = tmp
        .path()
        .join(format!("{PLACEHOLDERS}{ATTR}"))
        .join(IMG)
        .join("a<")
        .join("script><script>document.title='PW'+'NED'<")
        .join("script>");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::rename(&run, &target).unwrap();
    let out = tmp.path().join("report");
    let recorded = Command::new(BIN)
        .args([
            "record", "--no-gif", "--no-mp4", "--width", "320", "--height", "240",
        ])
        .args(["--max-steps", "10", "--out"])
        .arg(&out)
        .arg(&target)
        .output()
        .expect("wormnet runs");
    assert!(
        recorded.status.success(),
        "{}",
        String::from_utf8_lossy(&recorded.stderr)
    );
    let dom = open_in_chromium(&out.join("report.html"), &tmp.path().join("profile"));
    assert!(!dom.contains(MARKER), "a payload ran: {dom}");
    // The page's own script ran, and drew every string as text.
    assert!(dom.contains("step 1 / "), "the page drew its first step");
    let h1 = &dom[dom.find("<h1>").unwrap()..dom.find("</h1>").unwrap()];
    assert!(
        h1.contains(PLACEHOLDERS) && h1.contains(&as_text(IMG)) && !h1.contains("episodes"),
        "the heading is the path, as text: {h1}"
    );
    let contrib = element(&dom, "contrib", "</table>");
    assert!(
        // As in every log, a `"` of a name is written `_` (one CSV cell).
        contrib.contains(&format!(
            "motor_{}",
            as_text(&format!("{IMG}{}", ATTR.replace('"', "_")))
        )),
        "the motor neurons are named by the action, as text: {contrib}"
    );
    let ablation = element(&dom, "ablation", "</table>");
    for payload in [IMG, ATTR, SCRIPT] {
        assert!(
            ablation.contains(&as_text(payload)),
            "{payload}: {ablation}"
        );
    }
    let config = element(&dom, "config", "</pre>");
    assert!(config.contains(&as_text(IMG)), "{config}");
    let wiring = element(&dom, "wiring", "</svg>");
    assert!(wiring.contains(&as_text(IMG)), "{wiring}");
    // No payload became an element: the page's two images, one picture, two scripts.
    for (tag, count) in [("<img", 2), ("<svg", 1), ("<script", 2)] {
        assert_eq!(dom.matches(tag).count(), count, "{tag} elements: {dom}");
    }
}
