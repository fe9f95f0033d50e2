//! `wormnet search`: the command writes a run directory that `eval` and `report` read (the
//! report labelling the method), and refuses bad input with a one-line error naming the field.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_wormnet");

/// `wormnet ARGS` from the repository root (the TW config names its wiring file from there).
fn wormnet(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(args)
        .arg(dir)
        .output()
        .expect("wormnet runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn search_writes_a_run_that_eval_and_report_read() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let out = wormnet(
        &[
            "search",
            "configs/tw_cartpole.toml",
            "--set",
            "search.iterations=30",
            "--set",
            "search.eval_every=10",
            "--set",
            "run.eval_episodes=4",
            "--threads",
            "2",
            "--run-dir",
        ],
        &run,
    );
    let text = stderr(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("try 30: score") && text.contains("done (iterations)"),
        "{text}"
    );
    let out = wormnet(&["eval", "--episodes", "3", "--deterministic"], &run);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("return"), "{said}");
    let out = wormnet(&["report"], &run);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(said.contains("cartpole ltc search"), "{said}");
    assert!(!stderr(&out).contains("unfinished"), "{}", stderr(&out));
}

#[test]
fn bad_search_input_is_a_one_line_error_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, field) in [
        (vec!["--set", "search.worst=100"], "search.worst"),
        (vec!["--minutes", "0"], "search.minutes"),
        (vec!["--set", "search.step=-1"], "search.step"),
        (
            vec!["--set", "search.confirm_episodes=200000"],
            "search.confirm_episodes",
        ),
    ] {
        let run = tmp.path().join("run");
        let mut all = vec!["search", "configs/tw_cartpole.toml"];
        all.extend(args);
        all.push("--run-dir");
        let out = wormnet(&all, &run);
        let text = stderr(&out);
        assert!(!out.status.success(), "{text}");
        assert!(text.contains(field) && !text.contains("panicked"), "{text}");
        assert_eq!(text.trim().lines().count(), 1, "{text}");
        assert!(!run.exists(), "a refused search left {}", run.display());
    }
}
