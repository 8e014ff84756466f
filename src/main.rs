fn main() -> std::process::ExitCode {
    relance::cli::main()
}
