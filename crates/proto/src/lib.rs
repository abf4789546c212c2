//! Generated `lotline.v1` code (never edited) and the one place that converts
//! wire types to domain types and back ([`convert`]).

#[allow(clippy::all, missing_docs, unused_qualifications)]
pub mod v1 {
    tonic::include_proto!("lotline.v1");
    include!(concat!(env!("OUT_DIR"), "/lotline.v1.serde.rs"));
}

/// The encoded descriptor set of every lotline.v1 file, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/lotline_descriptor.bin"));

pub mod build;
pub mod convert;
pub mod documents;
pub mod encoded;
