//! The `lotline` binary: a thin shell over [`lotline_server::cli`].

// sled allocates and frees on every key it writes (it clones the node it links
// to); mimalloc does that work markedly faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    lotline_server::cli::main()
}
