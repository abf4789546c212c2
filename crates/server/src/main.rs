//! The `lotline` binary: a thin shell over [`lotline_server::cli`].

fn main() -> std::process::ExitCode {
    lotline_server::cli::main()
}
