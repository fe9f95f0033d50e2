//! The template's promise: an env that lives outside wormnet's `envs/` trains, evaluates and
//! records through the `wormnet` entry point, with nothing but this crate's own files.

use std::path::Path;

fn wormnet(args: &[&str]) {
    let mut registry = wormnet_cli::envs::registry();
    wormnet_example_lander::register(&mut registry);
    let argv = std::iter::once("lander").chain(args.iter().copied());
    if let Err(e) = wormnet_cli::run(registry, argv) {
        panic!("wormnet {args:?}: {e:#}");
    }
}

#[test]
fn trains_evaluates_and_records_through_the_entry_point() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("lander.toml");
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("lander.toml"))
            .expect("the template's config");
    // The shipped config, shortened to two updates.
    let short = shipped
        .replace("total_steps = 200_000", "total_steps = 256")
        .replace("eval_episodes = 16", "eval_episodes = 2")
        .replace("steps_per_rollout = 64", "steps_per_rollout = 16");
    assert_ne!(
        short, shipped,
        "the config still has the fields this test shortens"
    );
    std::fs::write(&config, short).expect("config");
    let run = tmp.path().join("run");
    let (run_s, config_s) = (
        run.to_str().expect("utf-8"),
        config.to_str().expect("utf-8"),
    );

    wormnet(&["train", "--quiet", "--run-dir", run_s, config_s]);
    assert!(run.join("latest.json").exists() && run.join("metrics.csv").exists());

    wormnet(&["eval", run_s, "--episodes", "2", "--deterministic"]);
    assert!(
        run.join("evals.jsonl").exists(),
        "eval recorded its result next to the run"
    );
    let sidecar: wormnet_cli::agent::checkpoint::Sidecar =
        wormnet_cli::agent::checkpoint::load_json(&run.join("latest.json")).expect("sidecar");
    assert_eq!(sidecar.env_spec.name, "lander");

    let out = tmp.path().join("audit");
    let out_s = out.to_str().expect("utf-8");
    wormnet(&[
        "record",
        run_s,
        "--episodes",
        "1",
        "--max-steps",
        "12",
        "--out",
        out_s,
        "--width",
        "320",
        "--height",
        "240",
        "--no-mp4",
    ]);
    let episode = out.join("episode_000");
    for file in [
        "steps.csv",
        "episode.gif",
        "activity.png",
        "heatmap.png",
        "correlations.csv",
        "attribution.csv",
        "attribution.png",
        "saliency.csv",
        "frames/frame_00000.png",
    ] {
        assert!(episode.join(file).exists(), "record wrote {file}");
    }
    // One self-contained page for the recording: its data embedded, its frames beside it,
    // nothing fetched from the network.
    let report = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    assert!(report.contains("episode_000/frames/frame_00001.png"));
    assert!(report.contains("\"checkpoint_step\""));
    for remote in ["src=\"http", "href=\"http", "url(http", "import "] {
        assert!(!report.contains(remote), "the report loads {remote}…");
    }
    let csv = std::fs::read_to_string(episode.join("steps.csv")).expect("steps.csv");
    let header = csv.lines().next().expect("header");
    assert!(
        header.contains("obs/vy") && header.contains("neuron/motor_main_engine"),
        "{header}"
    );
}
