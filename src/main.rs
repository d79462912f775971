fn main() {
    std::process::exit(syncgate::cli::main_impl());
}
