//! The sandbox helper binary (see `tandem_sandbox::helper`).

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    tandem_sandbox::helper::main(&args)
}
