// jemalloc instead of the system allocator: the gate and the mock allocate and free many
// small JSON maps, and glibc's malloc/free was ~40% of the gate's CPU profile (jemalloc cut
// the default gate's CPU by about a third, benches/RESULTS.md). Not on MSVC, which
// jemalloc does not build for.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    std::process::exit(syncgate::cli::main_impl());
}
