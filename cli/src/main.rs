//! The `wormnet` command with wormnet's built-in environments. A crate with its own envs has a
//! `main` just like this one, with its registry (see envs/README.md, "Outside this repository").

fn main() -> std::process::ExitCode {
    wormnet_cli::main(wormnet_envs::registry())
}
