//! Generates the Pub/Sub API's messages, client and server (`eventbus.v1`) from
//! `proto/pubsub_api.proto`.
//!
//! The proto is parsed by `protox`, a protobuf compiler written in Rust, and its descriptors
//! are handed to `tonic-prost-build`: building syncgate needs no `protoc` on the machine. (The
//! alternative, prost messages derived by hand, would duplicate the proto that the Python test
//! client also compiles, and could drift from it unnoticed.)

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/pubsub_api.proto");
    let descriptors = protox::compile(["pubsub_api.proto"], ["proto"])?;
    tonic_prost_build::configure()
        // The engine builds its own channel (TLS to a real org, plain HTTP/2 to the mock).
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
