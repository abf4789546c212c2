//! Compiles `proto/lotline/v1/*.proto` without a system `protoc`: protox parses the
//! files into a descriptor set, tonic-prost-build generates messages and services,
//! and pbjson-build generates the proto3 JSON mapping (serde) for every message.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "lotline/v1/event.proto",
        "lotline/v1/event_service.proto",
        "lotline/v1/provenance.proto",
        "lotline/v1/log.proto",
        "lotline/v1/audit.proto",
        "lotline/v1/master_data.proto",
        "lotline/v1/access.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let fds = protox::compile(files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out.join("lotline_descriptor.bin");
    std::fs::write(&descriptor_path, prost::Message::encode_to_vec(&fds))?;

    tonic_prost_build::configure()
        .btree_map(".")
        .compile_fds(fds)?;

    let descriptors = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .btree_map(["."])
        .build(&[".lotline.v1"])?;
    Ok(())
}
