//! `lander`: the whole `wormnet` command, with the built-in envs and this crate's lander.

fn main() -> std::process::ExitCode {
    let mut registry = wormnet_cli::envs::registry();
    wormnet_example_lander::register(&mut registry);
    wormnet_cli::main(registry)
}
